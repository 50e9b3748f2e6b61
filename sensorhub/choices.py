from django.db import models


class StorageStrategy(models.TextChoices):
    TIMESCALEDB = "timescaledb", "TimescaleDB hypertable"
    PLAIN = "plain", "Plain PostgreSQL (BRIN index, rollup and retention tasks)"
