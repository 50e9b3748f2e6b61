from django.db.models import OuterRef, QuerySet, Subquery

from ingestion.models import Sensor, SensorReading


def sensors_with_latest(queryset: QuerySet[Sensor] | None = None) -> QuerySet[Sensor]:
    """Sensors annotated with ``latest_time`` and ``latest_value``; one index probe per sensor on (sensor_id, time)."""
    queryset = Sensor.objects.all() if queryset is None else queryset
    latest = SensorReading.objects.filter(sensor=OuterRef("pk")).order_by("-time")
    return queryset.annotate(
        latest_time=Subquery(latest.values("time")[:1]),
        latest_value=Subquery(latest.values("value")[:1]),
    )
