from django.db import models


class ForecastModel(models.Model):
    """The forecaster chosen for one sensor by backtest: its artifact, the metrics that chose it, and how well its
    forecasts turned out once the actual readings arrived."""

    sensor = models.ForeignKey("ingestion.Sensor", on_delete=models.CASCADE, related_name="forecast_models")
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=40, help_text="The chosen candidate, e.g. prophet, ets, naive.")
    artifact = models.CharField(max_length=255, help_text="Path under SENSORHUB_MODEL_DIR.")
    sha256 = models.CharField(max_length=64)
    params = models.JSONField(default=dict, help_text="step_seconds, season, horizon, interval used to train.")
    backtest = models.JSONField(default=dict, help_text="Every candidate's rolling-origin backtest metrics.")
    mase = models.FloatField(help_text="Backtest MASE of the chosen model.")
    mae = models.FloatField()
    coverage = models.FloatField(null=True, help_text="Share of backtest actuals inside the prediction interval.")
    trained_at = models.DateTimeField(auto_now_add=True)
    fit_seconds = models.FloatField(help_text="Wall time of backtest and fit.")
    data_start = models.DateTimeField()
    data_end = models.DateTimeField()
    points = models.PositiveIntegerField(help_text="Steps of history it learned from.")
    data_hash = models.CharField(max_length=64, help_text="Hash of the training series; unchanged data, no retrain.")
    # Realised accuracy, updated as forecasts of this version are evaluated against the readings that came.
    realised_forecasts = models.PositiveIntegerField(default=0)
    realised_points = models.PositiveIntegerField(default=0)
    realised_mae = models.FloatField(null=True, blank=True)
    realised_mape = models.FloatField(null=True, blank=True)
    realised_coverage = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sensor", "version"], name="forecastmodel_sensor_version")]
        ordering = ["sensor", "-version"]

    def __str__(self) -> str:
        return f"{self.sensor_id} {self.name} v{self.version}"


class Forecast(models.Model):
    """One forecast of a sensor from one origin: the points (time, yhat, lower, upper) for the next steps.

    ``origin`` is the start of the last complete step the forecast saw; point times are step starts and each value is
    the mean of the readings in that step. Kept for SENSORHUB_FORECAST_KEEP_DAYS to compare with what happened."""

    sensor = models.ForeignKey("ingestion.Sensor", on_delete=models.CASCADE, related_name="forecasts")
    model = models.ForeignKey(ForecastModel, on_delete=models.CASCADE, related_name="forecasts")
    origin = models.DateTimeField()
    step_seconds = models.PositiveIntegerField()
    interval = models.FloatField()
    points = models.JSONField(help_text="[{time, yhat, lower, upper}, …] in time order.")
    created_at = models.DateTimeField(auto_now_add=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    realised_points = models.PositiveIntegerField(default=0)
    realised_mae = models.FloatField(null=True, blank=True)
    realised_mape = models.FloatField(null=True, blank=True)
    realised_coverage = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sensor", "origin", "model"], name="forecast_sensor_origin")]
        indexes = [models.Index(fields=["sensor", "-created_at"]),
                   models.Index(fields=["origin"], condition=models.Q(evaluated_at__isnull=True),
                                name="forecast_to_evaluate")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.sensor_id} forecast from {self.origin.isoformat()}"
