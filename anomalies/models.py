from django.db import models

from anomalies.choices import AnomalyKind


class AnomalyModel(models.Model):
    """A trained detector for one sensor: the artifact on disk, its hash and the data it learned from."""

    sensor = models.ForeignKey("ingestion.Sensor", on_delete=models.CASCADE, related_name="anomaly_models")
    version = models.PositiveIntegerField()
    artifact = models.CharField(max_length=255, help_text="Path under SENSORHUB_MODEL_DIR.")
    sha256 = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    trained_at = models.DateTimeField(auto_now_add=True)
    data_start = models.DateTimeField()
    data_end = models.DateTimeField()
    readings = models.PositiveIntegerField()
    data_hash = models.CharField(max_length=64, help_text="Hash of the training window; unchanged data, no retrain.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sensor", "version"], name="anomalymodel_sensor_version")]
        ordering = ["sensor", "-version"]

    def __str__(self) -> str:
        return f"{self.sensor_id} v{self.version}"


class ScoringState(models.Model):
    """Where live scoring of a sensor stands: the detector's state after the last scored reading."""

    sensor = models.OneToOneField("ingestion.Sensor", on_delete=models.CASCADE, primary_key=True,
                                  related_name="scoring_state")
    model = models.ForeignKey(AnomalyModel, on_delete=models.CASCADE, related_name="+")
    scored_until = models.DateTimeField()
    state = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)


class AnomalyEvent(models.Model):
    sensor = models.ForeignKey("ingestion.Sensor", on_delete=models.CASCADE, related_name="anomaly_events")
    time = models.DateTimeField()
    value = models.FloatField()
    score = models.FloatField()
    kind = models.CharField(max_length=20, choices=AnomalyKind.choices)
    explanation = models.TextField()
    expected_low = models.FloatField()
    expected_high = models.FloatField()
    model = models.ForeignKey(AnomalyModel, null=True, on_delete=models.SET_NULL, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sensor", "time"], name="anomalyevent_sensor_time")]
        # The unique (sensor, time) index also serves "this sensor's events, newest first".
        indexes = [models.Index(fields=["-created_at"])]
        ordering = ["-time"]

    def __str__(self) -> str:
        return f"{self.sensor_id} {self.kind} at {self.time.isoformat()} ({self.score:.2f})"
