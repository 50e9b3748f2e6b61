from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Avg, Count, Max, Min, OuterRef, QuerySet, Subquery

from ingestion.models import Sensor, SensorReading
from sensorhub.storage import BUCKET_ORIGIN, DIRTY_TABLE, READINGS_TABLE

BUCKETS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
AGGREGATES = ("avg", "min", "max", "count", "p95")
# SQL per aggregate: over raw rows, and over rollup rows (p95 cannot be rebuilt from rollups).
RAW_SQL = {"avg": "avg(value)", "min": "min(value)", "max": "max(value)", "count": "count(*)",
           "p95": "percentile_cont(0.95) WITHIN GROUP (ORDER BY value)"}
ROLLUP_SQL = {"avg": "sum(total) / sum(n)", "min": "min(vmin)", "max": "max(vmax)", "count": "sum(n)::bigint"}
ROLLUP_ROW_SQL = {"avg": "total / n", "min": "vmin", "max": "vmax", "count": "n"}
ROLLUP_WIDTHS = {"ingestion_reading_1h": timedelta(hours=1), "ingestion_reading_1m": timedelta(minutes=1)}


def sensors_with_latest(queryset: QuerySet[Sensor] | None = None) -> QuerySet[Sensor]:
    """Sensors annotated with ``latest_time`` and ``latest_value``; one index probe per sensor on (sensor_id, time)."""
    queryset = Sensor.objects.all() if queryset is None else queryset
    latest = SensorReading.objects.filter(sensor=OuterRef("pk")).order_by("-time")
    return queryset.annotate(
        latest_time=Subquery(latest.values("time")[:1]),
        latest_value=Subquery(latest.values("value")[:1]),
    )


def sensor_stats(*, sensor: Sensor, since: datetime) -> dict:
    return SensorReading.objects.filter(sensor=sensor, time__gte=since).aggregate(
        count=Count("*"), min=Min("value"), max=Max("value"), avg=Avg("value")
    )


@dataclass
class Series:
    bucket: str
    source: str
    points: int
    columns_json: str  # {"time": […], "<aggregate>": […], …}, built by PostgreSQL


def choose_bucket(*, requested: str | None, start: datetime, end: datetime, max_points: int,
                  expected_interval: timedelta) -> tuple[str, bool]:
    """The requested bucket when it fits in max_points, else the finest one that does. Returns (bucket, changed)."""
    span = end - start
    if requested == "raw" or requested is None:
        if span / expected_interval <= max_points:
            return "raw", requested is None
    elif span / BUCKETS[requested] <= max_points:
        return requested, False
    for name, width in BUCKETS.items():
        if span / width <= max_points:
            return name, True
    return "1d", True


def _as_json_columns(inner_sql: str, names: tuple[str, ...]) -> str:
    # Charts ask for tens of thousands of points: PostgreSQL builds the JSON arrays in C, far faster than loading
    # rows into Python objects and encoding them again.
    # Times come out as ISO 8601 (2026-01-31T12:00:00+00:00): Django sets the session time zone to UTC.
    arrays = ", ".join(f"'{n}', coalesce(json_agg({n} ORDER BY t), '[]')" for n in names)
    return (f"SELECT json_build_object('time', coalesce(json_agg(t ORDER BY t), '[]'), {arrays})::text, count(*) "
            f"FROM ({inner_sql}) q")


def readings_series(*, sensor: Sensor, start: datetime, end: datetime, bucket: str,
                    aggregates: tuple[str, ...], max_points: int) -> Series:
    params: dict = {"sensor": sensor.pk, "start": start, "end": end, "limit": max_points}
    if bucket == "raw":
        inner = (f"SELECT time AS t, value FROM {READINGS_TABLE} WHERE sensor_id = %(sensor)s "
                 "AND time >= %(start)s AND time < %(end)s ORDER BY time LIMIT %(limit)s")
        sql, source = _as_json_columns(inner, ("value",)), "raw"
    else:
        width = BUCKETS[bucket]
        params["width"] = width
        rollup = _rollup_for(width, aggregates)
        named = tuple(aggregates)
        raw_sql = _select_raw(named)
        if rollup is None:
            inner, source = raw_sql, "raw"
        else:
            # Buckets after the earliest range the rollup has not absorbed yet come from raw rows; the split is
            # aligned to the query's buckets so no bucket is counted from both sides.
            params["split"] = _rollup_fresh_until(sensor.pk, start, end, width)
            late_raw = raw_sql.replace("%(start)s", "GREATEST(%(start)s, %(split)s)")
            rollup_sql = _select_rollup(rollup, named, same_width=ROLLUP_WIDTHS[rollup] == width)
            inner, source = f"{rollup_sql} UNION ALL {late_raw}", rollup
        sql = _as_json_columns(inner, named)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        columns_json, points = cursor.fetchone()
    return Series(bucket, source, points, columns_json)


def _rollup_for(width: timedelta, aggregates) -> str | None:
    if "p95" in aggregates:
        return None
    for name, rollup_width in ROLLUP_WIDTHS.items():
        if width % rollup_width == timedelta(0):
            return name
    return None


def _bucket_expr(column: str) -> str:
    return f"date_bin(%(width)s, {column}, TIMESTAMPTZ '{BUCKET_ORIGIN}')"


def _select_raw(aggregates) -> str:
    cols = ", ".join(f"{RAW_SQL[a]} AS {a}" for a in aggregates)
    return (f"SELECT {_bucket_expr('time')} AS t, {cols} FROM {READINGS_TABLE} WHERE sensor_id = %(sensor)s "
            f"AND time >= %(start)s AND time < %(end)s GROUP BY 1")


def _select_rollup(rollup: str, aggregates, *, same_width: bool) -> str:
    where = f"FROM {rollup} WHERE sensor_id = %(sensor)s AND bucket >= %(start)s AND bucket < %(split)s"
    if same_width:  # the rollup rows are the buckets: no regrouping
        cols = ", ".join(f"{ROLLUP_ROW_SQL[a]} AS {a}" for a in aggregates)
        return f"SELECT bucket AS t, {cols} {where}"
    cols = ", ".join(f"{ROLLUP_SQL[a]} AS {a}" for a in aggregates)
    return f"SELECT {_bucket_expr('bucket')} AS t, {cols} {where} GROUP BY 1"


def _rollup_fresh_until(sensor_id: int, start: datetime, end: datetime, width: timedelta) -> datetime:
    from sensorhub.storage import StorageStrategy, strategy

    if strategy() == StorageStrategy.TIMESCALEDB:
        return end  # real-time continuous aggregates already merge the newest raw rows
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_bin(%s, min(start_time), TIMESTAMPTZ '{BUCKET_ORIGIN}') FROM {DIRTY_TABLE} "
            "WHERE sensor_id = %s AND end_time >= %s AND start_time < %s",
            [width, sensor_id, start, end],
        )
        pending = cursor.fetchone()[0]
    return end if pending is None else max(start, pending)


def readings_csv_rows(*, sensor: Sensor, start: datetime, end: datetime) -> Iterator[tuple]:
    """Raw readings in time order, fetched in chunks through a server-side cursor (constant memory)."""
    queryset = (SensorReading.objects.filter(sensor=sensor, time__gte=start, time__lt=end)
                .order_by("time").values_list("time", "value"))
    yield from queryset.iterator(chunk_size=5000)

