from django.db import models


class StorageStrategy(models.TextChoices):
    TIMESCALEDB = "timescaledb", "TimescaleDB hypertable"
    PLAIN = "plain", "Plain PostgreSQL (BRIN index, rollup and retention tasks)"


class Scope(models.TextChoices):
    READINGS_WRITE = "readings:write", "Post readings"
    READINGS_READ = "readings:read", "Read sensors and readings"
    ML_READ = "ml:read", "Predict, detect anomalies, check drift"
    ML_ADMIN = "ml:admin", "Train, promote and roll back models"
    ADMIN = "admin", "Manage sensors and sites"
