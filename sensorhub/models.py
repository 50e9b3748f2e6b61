from django.db import models

from sensorhub.choices import StorageStrategy


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
