from django.contrib.postgres.fields import ArrayField
from django.db import connection, models

from sensorhub.choices import Scope, StorageStrategy


class StorageBackend(models.Model):
    """The time-series storage strategy, chosen once when the readings table is migrated. One row."""

    strategy = models.CharField(max_length=20, choices=StorageStrategy.choices)
    timescaledb_version = models.CharField(max_length=40, blank=True)
    postgres_version = models.CharField(max_length=80, blank=True)
    reason = models.TextField(blank=True, help_text="Why this strategy was chosen.")
    chosen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="storagebackend_single_row")]

    def __str__(self) -> str:
        return self.get_strategy_display()


class ApiKeyQuerySet(models.QuerySet):
    def usable(self):
        from django.utils import timezone

        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )


class ApiKey(models.Model):
    """A machine credential. The secret is shown once at creation; only its SHA-256 is stored.

    The full key reads ``shk_<prefix>_<secret>``: the prefix finds the row, the secret's hash proves it.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(models.CharField(max_length=20, choices=Scope.choices), default=list)
    sites = models.ManyToManyField("ingestion.Site", blank=True, related_name="+",
                                   help_text="Limit the key to these sites' sensors (empty: every site).")
    sensors = models.ManyToManyField("ingestion.Sensor", blank=True, related_name="+",
                                     help_text="Limit the key to these sensors (empty: no per-sensor limit).")
    may_register_sensors = models.BooleanField(
        default=False, help_text="Readings for unknown sensors create them (needs SENSORHUB_AUTO_REGISTER_SENSORS)."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey("auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    def restricted_sensor_ids(self) -> set[int] | None:
        """Sensor ids this key may touch, or None when it may touch every sensor. Cached on the instance."""
        if not hasattr(self, "_allowed"):
            from ingestion.models import Sensor

            # One plain query for both limits: this runs on every API request made with a key, and the ORM's
            # compilation of the equivalent union cost ten times the query itself.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT site_id, 0 FROM {ApiKey.sites.through._meta.db_table} WHERE apikey_id = %s UNION ALL "
                    f"SELECT sensor_id, 1 FROM {ApiKey.sensors.through._meta.db_table} WHERE apikey_id = %s",
                    [self.pk, self.pk])
                rows = cursor.fetchall()
            site_ids = [pk for pk, is_sensor in rows if not is_sensor]
            sensor_ids = {pk for pk, is_sensor in rows if is_sensor}
            if site_ids:
                sensor_ids |= set(Sensor.objects.filter(site_id__in=site_ids).values_list("pk", flat=True))
            self._allowed = sensor_ids if (site_ids or sensor_ids) else None
        return self._allowed

    def forget_allowed_sensors(self) -> None:
        self.__dict__.pop("_allowed", None)
