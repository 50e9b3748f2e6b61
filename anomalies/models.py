from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import models

from anomalies.choices import AlertSource, AlertStatus, AnomalyKind, ChannelKind, DeliveryStatus


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


class AlertRule(models.Model):
    """How one sensor's anomaly events and forecasts become alerts. Sensors without a rule use the defaults."""

    sensor = models.OneToOneField("ingestion.Sensor", on_delete=models.CASCADE, related_name="alert_rule")
    threshold = models.FloatField(default=0.5, help_text="An event scoring this or more can open an alert.")
    clear_below = models.FloatField(default=0.3, help_text="Hysteresis: the alert resolves itself after "
                                                           "`resolve_after` with no event scoring this or more.")
    min_duration = models.DurationField(default=timedelta(0),
                                        help_text="The anomaly must go on this long before an alert opens: most "
                                                  "readings after its event still outside the usual range (or "
                                                  "still the stuck value). 0: alert at once.")
    resolve_after = models.DurationField(default=timedelta(minutes=30))
    cooldown = models.DurationField(default=timedelta(hours=1),
                                    help_text="No new alert this long after the last one resolved.")
    enabled = models.BooleanField(default=True)
    # Forecast alerts: the forecast crossing the sensor's valid range or these limits within `forecast_within`.
    forecast_above = models.FloatField(null=True, blank=True,
                                       help_text="Alert when the forecast rises above this (besides the valid max).")
    forecast_below = models.FloatField(null=True, blank=True,
                                       help_text="Alert when the forecast falls below this (besides the valid min).")
    forecast_within = models.DurationField(default=timedelta(hours=12),
                                           help_text="How far ahead a forecast crossing raises an alert.")
    forecast_enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(clear_below__lte=models.F("threshold")),
                                              name="alertrule_hysteresis_ordered")]

    def __str__(self) -> str:
        return f"rule for {self.sensor_id}"

    def clean(self) -> None:
        recorded = settings.SENSORHUB_ANOMALY_EVENT_THRESHOLD
        errors = {}
        if self.threshold is not None and not recorded <= self.threshold <= 1:
            errors["threshold"] = (f"Between {recorded} and 1: weaker scores are not recorded as events "
                                   f"(SENSORHUB_ANOMALY_EVENT_THRESHOLD), so they could never open an alert.")
        if self.clear_below is not None and self.threshold is not None and self.clear_below > self.threshold:
            errors["clear_below"] = "At most the threshold: an alert stays open while events score this or more."
        if errors:
            raise ValidationError(errors)


class Alert(models.Model):
    """An anomaly alert (from detector events) or a forecast alert (the forecast crosses a limit soon)."""

    sensor = models.ForeignKey("ingestion.Sensor", on_delete=models.CASCADE, related_name="alerts")
    source = models.CharField(max_length=20, choices=AlertSource.choices, default=AlertSource.ANOMALY)
    status = models.CharField(max_length=20, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    kind = models.CharField(max_length=20, choices=AnomalyKind.choices)
    opened_at = models.DateTimeField(auto_now_add=True)
    first_event_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    trigger_value = models.FloatField()
    trigger_score = models.FloatField()
    peak_score = models.FloatField()
    explanation = models.TextField()
    model = models.ForeignKey(AnomalyModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    forecast_model = models.ForeignKey("forecasting.ForecastModel", null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="alerts")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    help_text="Empty when the alert resolved itself.")
    false_positive = models.BooleanField(default=False)

    class Meta:
        ordering = ["-opened_at"]
        indexes = [models.Index(fields=["sensor", "status"]), models.Index(fields=["status", "-opened_at"])]
        constraints = [
            # At most one alert per sensor and source is not resolved: a noisy sensor extends it instead of
            # opening more.
            models.UniqueConstraint(fields=["sensor", "source"], condition=~models.Q(status="resolved"),
                                    name="alert_one_active_per_sensor_source"),
        ]

    def __str__(self) -> str:
        return f"{self.sensor_id} {self.kind} alert ({self.status})"


class NotificationChannel(models.Model):
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    target = models.CharField(max_length=500, help_text="An email address, or the webhook's URL.")
    secret = models.CharField(max_length=200, blank=True, help_text="Webhook only: the HMAC-SHA256 signing key.")
    sites = models.ManyToManyField("ingestion.Site", blank=True, related_name="+",
                                   help_text="Only alerts of these sites' sensors (empty: all).")
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        if self.kind == ChannelKind.EMAIL:
            try:
                validate_email(self.target)
            except ValidationError:
                raise ValidationError({"target": "An email channel's target is one email address."}) from None
        elif self.kind == ChannelKind.WEBHOOK:
            try:
                URLValidator(schemes=["http", "https"])(self.target)
            except ValidationError:
                raise ValidationError({"target": "A webhook's target is an http:// or https:// URL."}) from None
            if not self.secret:
                raise ValidationError({"secret": "Webhooks are signed: set a secret, and check the "
                                                 "X-SensorHub-Signature header (HMAC-SHA256 of the body) with it."})


class Delivery(models.Model):
    """One notification of one alert on one channel, with every attempt's outcome."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "channel"], name="delivery_alert_channel")]
