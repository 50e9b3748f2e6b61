from django.db import models


class AnomalyKind(models.TextChoices):
    SPIKE = "spike", "Spike"
    LEVEL = "level", "Level shift"
    VARIANCE = "variance", "Variance change"
    STUCK = "stuck", "Stuck value"
    PATTERN = "pattern", "Pattern break"
    FORECAST = "forecast", "Forecast crossing"


class AlertSource(models.TextChoices):
    ANOMALY = "anomaly", "Anomaly detection"
    FORECAST = "forecast", "Forecast"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
