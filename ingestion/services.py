from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from ingestion.models import IdempotencyKey, Sensor, Site
from ingestion.parsing import Columns
from ingestion.validation import SensorRule, slug_is_valid, validate

logger = logging.getLogger(__name__)

STAGING_TABLE = "ingest_staging"
UNASSIGNED_SITE = "unassigned"


@dataclass
class IngestResult:
    status: int
    body: dict
    replayed: bool = False


@dataclass(frozen=True)
class Idempotency:
    scope: str
    key: str
    body_sha256: str

    @property
    def cache_key(self) -> str:
        return f"idempotency:{self.scope}:{hashlib.sha256(self.key.encode()).hexdigest()}"


def idempotency_for(*, scope: str, key: str, body: bytes, content_type: str) -> Idempotency:
    digest = hashlib.sha256(content_type.split(";")[0].strip().lower().encode() + b"\n" + body).hexdigest()
    return Idempotency(scope=scope, key=key, body_sha256=digest)


def _replay(idem: Idempotency, body_sha256: str, status: int, response: dict) -> IngestResult:
    if body_sha256 != idem.body_sha256:
        return IngestResult(422, {
            "detail": f"Idempotency-Key {idem.key!r} was already used with a different request body. "
                      "Use a new key for a new batch; resend the identical body to get the first answer again.",
        })
    return IngestResult(status, response, replayed=True)


def idempotency_cached(idem: Idempotency) -> IngestResult | None:
    """The fast path: the first answer from Redis. A miss (or Redis being down) falls through to the database."""
    try:
        hit = cache.get(idem.cache_key)
    except Exception:  # Redis unavailable: the database still guarantees exactly-once
        logger.warning("idempotency cache unavailable", exc_info=True)
        return None
    return _replay(idem, *hit) if hit else None


def _remember(idem: Idempotency, result: IngestResult) -> None:
    try:
        cache.set(idem.cache_key, (idem.body_sha256, result.status, result.body),
                  settings.SENSORHUB_IDEMPOTENCY_CACHE_SECONDS)
    except Exception:
        logger.warning("idempotency cache unavailable", exc_info=True)


def sensor_rules(*, slugs: set[str], api_key, now: datetime) -> dict[str, SensorRule]:
    """One query for every sensor the batch names, with what the key may do with each."""
    allowed_ids = api_key.restricted_sensor_ids() if api_key is not None else None
    default_days = settings.SENSORHUB_RETENTION_DAYS
    rules = {}
    for row in Sensor.objects.filter(slug__in=slugs).values(
        "id", "slug", "active", "valid_min", "valid_max", "retention_days"
    ):
        rules[row["slug"]] = SensorRule(
            id=row["id"], slug=row["slug"], active=row["active"], valid_min=row["valid_min"],
            valid_max=row["valid_max"], oldest=now - timedelta(days=row["retention_days"] or default_days),
            allowed=allowed_ids is None or row["id"] in allowed_ids,
        )
    return rules


def sensors_auto_register(*, slugs: set[str], api_key) -> int:
    """Create sensors for unknown, well-formed slugs when the key and the settings allow it. Returns how many."""
    if not (settings.SENSORHUB_AUTO_REGISTER_SENSORS and api_key is not None and api_key.may_register_sensors):
        return 0
    if api_key.sensors.exists():
        return 0  # a key limited to named sensors cannot add new ones
    sites = list(api_key.sites.all())
    if len(sites) > 1:
        return 0  # which site the sensor belongs to would be a guess
    site = sites[0] if sites else Site.objects.get_or_create(
        slug=UNASSIGNED_SITE, defaults={"name": "Unassigned (auto-registered sensors)"})[0]
    new = [Sensor(slug=slug, name=slug, type="other", unit="", site=site) for slug in slugs if slug_is_valid(slug)]
    Sensor.objects.bulk_create(new, ignore_conflicts=True)
    if new:
        logger.info("auto-registered %d sensor(s)", len(new), extra={"sensors": [s.slug for s in new][:20]})
        api_key.forget_allowed_sensors()
    return len(new)


def _copy_and_insert(rows) -> tuple[int, list[int]]:
    """COPY into a per-connection staging table, then one INSERT … ON CONFLICT.

    Returns (rows inserted, staged positions that were duplicates), worked out by PostgreSQL: the staged rows that
    the INSERT did not return.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} (pos integer NOT NULL, sensor_id bigint NOT NULL, "
            "time timestamptz NOT NULL, value double precision NOT NULL) ON COMMIT DELETE ROWS"
        )
        # Empty already after a commit; not when a caller ingests several batches in one outer transaction.
        cursor.execute(f"TRUNCATE {STAGING_TABLE}")
        staged = 0
        with cursor.copy(f"COPY {STAGING_TABLE} (pos, sensor_id, time, value) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int8", "timestamptz", "float8"])  # binary: no text formatting of times
            for row in rows:
                copy.write_row((staged, *row))
                staged += 1
        cursor.execute(
            f"WITH inserted AS (INSERT INTO ingestion_sensorreading (sensor_id, time, value) "
            f"SELECT sensor_id, time, value FROM {STAGING_TABLE} ON CONFLICT (sensor_id, time) DO NOTHING "
            "RETURNING sensor_id, time) "
            f"SELECT s.pos FROM {STAGING_TABLE} s LEFT JOIN inserted i ON i.sensor_id = s.sensor_id AND i.time = s.time "
            "WHERE i.sensor_id IS NULL ORDER BY s.pos"
        )
        duplicates = [pos for (pos,) in cursor.fetchall()]
        return staged - len(duplicates), duplicates


def _touched_ranges(sensor_ids, times, skip: set[int]) -> dict[int, tuple[datetime, datetime]]:
    ranges: dict[int, tuple[datetime, datetime]] = {}
    for pos, (sensor_id, at) in enumerate(zip(sensor_ids, times)):
        if pos in skip:
            continue
        low_high = ranges.get(sensor_id)
        if low_high is None:
            ranges[sensor_id] = (at, at)
        elif at < low_high[0]:
            ranges[sensor_id] = (at, low_high[1])
        elif at > low_high[1]:
            ranges[sensor_id] = (low_high[0], at)
    return ranges


def _after_insert(ranges: dict[int, tuple[datetime, datetime]]) -> None:
    from sensorhub.storage import rollups_mark_dirty

    rollups_mark_dirty(ranges)
    # By name, not import: the ML apps depend on ingestion, never the other way round.
    transaction.on_commit(lambda: scoring_enqueue(ranges=ranges))


def scoring_enqueue(*, ranges: dict[int, tuple[datetime, datetime]]) -> int:
    """One scoring task per touched sensor, unless one is already waiting for that sensor (it will score these
    readings too: the scorer works from the sensor's own watermark). Returns how many tasks were sent.

    The waiting marks live in Redis with a short expiry, so a lost worker delays scoring by that long at most; if
    Redis cannot be asked, every sensor gets its task."""
    sensor_ids = list(ranges)
    try:
        with _redis().pipeline(transaction=False) as pipe:
            for sensor_id in sensor_ids:
                pipe.set(f"{SCORING_PENDING}{sensor_id}", 1, nx=True, ex=settings.SENSORHUB_SCORING_DEBOUNCE_SECONDS)
            fresh = pipe.execute()
    except Exception:
        logger.warning("scoring marks unavailable; enqueueing every sensor", exc_info=True)
        fresh = [True] * len(sensor_ids)
    task = settings.SENSORHUB_SCORING_TASK
    sent = 0
    with current_app.producer_or_acquire() as producer:
        for sensor_id, is_fresh in zip(sensor_ids, fresh):
            if is_fresh:
                start, end = ranges[sensor_id]
                current_app.send_task(task, kwargs={"sensor_id": sensor_id, "start": start.isoformat(),
                                                    "end": end.isoformat()}, producer=producer)
                sent += 1
    return sent


SCORING_PENDING = "sensorhub:scoring-pending:"


def scoring_started(*, sensor_id: int) -> None:
    """Called by the scoring task as it starts: readings that arrive from now on need a new task."""
    try:
        _redis().delete(f"{SCORING_PENDING}{sensor_id}")
    except Exception:
        logger.warning("scoring marks unavailable", exc_info=True)
_redis_client = None


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    return _redis_client


def readings_ingest(*, columns: Columns, api_key=None, idempotency: Idempotency | None = None) -> IngestResult:
    """Validate a batch in one pass and store it in one transaction; replays of an Idempotency-Key store nothing.

    Every item ends up accepted, duplicate (that sensor already has a value at that instant; the stored value is
    kept) or rejected with a reason. Scoring is enqueued for the touched sensors after commit.
    """
    now = timezone.now()
    slugs = {slug for slug in columns.sensors if isinstance(slug, str)}
    with transaction.atomic():
        if idempotency is not None:
            IdempotencyKey.objects.bulk_create(
                [IdempotencyKey(scope=idempotency.scope, key=idempotency.key, body_sha256=idempotency.body_sha256,
                                status_code=0, response={})],
                ignore_conflicts=True,
            )
            # ignore_conflicts leaves pk unset, so re-read: a concurrent first request has committed by now (the
            # unique index made this INSERT wait for it), or it rolled back and this request owns the key.
            row = IdempotencyKey.objects.select_for_update().get(scope=idempotency.scope, key=idempotency.key)
            if row.status_code:
                return _replay(idempotency, row.body_sha256, row.status_code, row.response)
        rules = sensor_rules(slugs=slugs, api_key=api_key, now=now)
        unknown = slugs - rules.keys()
        if unknown and sensors_auto_register(slugs=unknown, api_key=api_key):
            rules = sensor_rules(slugs=slugs, api_key=api_key, now=now)
        checked = validate(columns, rules, now=now)
        inserted, duplicate_positions = (
            _copy_and_insert(zip(checked.sensor_ids, checked.times, checked.values)) if checked.times else (0, []))
        duplicates = sorted(checked.duplicates_in_batch + [checked.indexes[pos] for pos in duplicate_positions])
        body = {
            "accepted": inserted,
            "duplicates": len(duplicates),
            "rejected": len(checked.rejected),
            "duplicate_indexes": duplicates,
            "errors": checked.rejected,
        }
        status = 422 if checked.rejected and not inserted and not duplicates else 200
        if inserted:
            _after_insert(_touched_ranges(checked.sensor_ids, checked.times, set(duplicate_positions)))
        if idempotency is not None:
            IdempotencyKey.objects.filter(scope=idempotency.scope, key=idempotency.key).update(
                status_code=status, response=body)
    result = IngestResult(status, body)
    if idempotency is not None:
        _remember(idempotency, result)
    return result


def idempotency_keys_expire(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(days=settings.SENSORHUB_IDEMPOTENCY_RETENTION_DAYS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def readings_enforce_retention(*, now: datetime | None = None) -> int:
    """Delete raw readings older than each sensor's retention (its override, else SENSORHUB_RETENTION_DAYS).

    On TimescaleDB whole chunks past the longest retention any sensor has are dropped first (cheap); the rows of
    sensors with a shorter retention are then deleted, so per-sensor overrides hold on both strategies. Returns the
    number of readings removed. Running it twice changes nothing more.
    """
    from sensorhub.storage import readings_drop_expired

    now = now or timezone.now()
    default_days = settings.SENSORHUB_RETENTION_DAYS
    with transaction.atomic(), connection.cursor() as cursor:
        overrides = Sensor.objects.exclude(retention_days=None).values_list("retention_days", flat=True)
        longest = max([default_days, *overrides])
        dropped = readings_drop_expired(cursor, older_than=now - timedelta(days=longest))
        cursor.execute(
            """
            DELETE FROM ingestion_sensorreading AS r
            USING ingestion_sensor AS s
            WHERE r.sensor_id = s.id
              AND r.time < %s - make_interval(days => COALESCE(s.retention_days, %s))
            """,
            [now, default_days],
        )
        return dropped + cursor.rowcount
