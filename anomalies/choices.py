from django.db import models


class AnomalyKind(models.TextChoices):
    SPIKE = "spike", "Spike"
    LEVEL = "level", "Level shift"
    VARIANCE = "variance", "Variance change"
    STUCK = "stuck", "Stuck value"
    PATTERN = "pattern", "Pattern break"
