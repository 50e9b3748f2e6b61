from datetime import timedelta

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

from ingestion.choices import SensorType
from ingestion.validation import SLUG

slug_validator = RegexValidator(
    SLUG,
    "Use lowercase letters, digits, '-' and '_', starting with a letter or digit (e.g. sensor-001).",
)


class Site(models.Model):
    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    timezone = models.CharField(
        max_length=64, default="UTC", help_text="IANA zone used only to display local times (data is stored in UTC)."
    )
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Sensor(models.Model):
    """A physical sensor. Devices address it by ``slug`` (stable, e.g. ``sensor-001``); the numeric id is internal."""

    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=SensorType.choices, db_index=True)
    unit = models.CharField(max_length=20, help_text="Unit of the values, e.g. °C, %, hPa, kW.")
    # No index of its own: the (site, active) index below starts with site and serves both.
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="sensors", db_index=False)
    active = models.BooleanField(default=True, help_text="Inactive sensors keep their history but reject new readings.")
    expected_interval = models.DurationField(
        default=timedelta(minutes=1),
        validators=[MinValueValidator(timedelta(seconds=1))],
        help_text="How often the sensor should report; used to detect gaps and choose chart buckets.",
    )
    valid_min = models.FloatField(null=True, blank=True, help_text="Lowest physically possible value.")
    valid_max = models.FloatField(null=True, blank=True, help_text="Highest physically possible value.")
    retention_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Keep raw readings this many days; empty means the platform default.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        indexes = [models.Index(fields=["site", "active"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_min__isnull=True) | Q(valid_max__isnull=True) | Q(valid_min__lt=F("valid_max")),
                name="sensor_valid_range_ordered",
                violation_error_message="The valid minimum must be below the valid maximum.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class SensorReading(models.Model):
    """One value from one sensor at one instant (UTC).

    The primary key is (sensor, time): a sensor has at most one value per instant, and TimescaleDB requires the time
    column in every unique index of a hypertable. How the table is stored (hypertable or plain table with a BRIN
    index) is decided at migrate time, see ``sensorhub.storage``.
    """

    pk = models.CompositePrimaryKey("sensor", "time")
    # PROTECT: history is kept; retire a sensor by deactivating it.
    sensor = models.ForeignKey(Sensor, on_delete=models.PROTECT, related_name="readings", db_index=False)
    time = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        ordering = ["sensor", "time"]

    def __str__(self) -> str:
        return f"{self.sensor_id} @ {self.time.isoformat()} = {self.value}"


class IdempotencyKey(models.Model):
    """A batch already answered. Kept with the ingest in one transaction, so a replay can never store twice."""

    scope = models.CharField(max_length=40, help_text="Whose key: 'key:<api key id>' or 'user:<user id>'.")
    key = models.CharField(max_length=255)
    body_sha256 = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotency_scope_key_unique")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
