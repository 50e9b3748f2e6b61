"""One pass over a parsed batch: every item is either a row to store or a rejection with a reason."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings

from ingestion.parsing import MISSING, Columns

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")  # the same rule as ingestion.models.slug_validator


def slug_is_valid(slug: str) -> bool:
    return bool(SLUG.match(slug))


@dataclass(frozen=True)
class SensorRule:
    id: int
    slug: str
    active: bool
    valid_min: float | None
    valid_max: float | None
    oldest: datetime  # readings before this are past retention
    allowed: bool  # the API key may write to it


@dataclass
class Validated:
    # Parallel lists of the rows to store, with the item index each came from.
    indexes: list[int] = field(default_factory=list)
    sensor_ids: list[int] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    duplicates_in_batch: list[int] = field(default_factory=list)


def reject(index: int, sensor, code: str, reason: str) -> dict:
    return {"index": index, "sensor": sensor if isinstance(sensor, str) else None, "code": code, "reason": reason}


def parse_time(raw) -> datetime | str:
    """A UTC datetime, or the reason it is not one. ISO 8601 with an offset, or Unix epoch seconds."""
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return f"time {raw[:40]!r} is not ISO 8601 (e.g. 2026-01-31T12:00:00Z) nor epoch seconds"
        if parsed.tzinfo is None:
            return f"time {raw[:40]!r} has no UTC offset; add Z or +00:00 (times are never guessed)"
        return parsed.astimezone(UTC)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw):
        try:
            return EPOCH + timedelta(seconds=raw)
        except OverflowError:
            return f"time {raw!r} is out of range for epoch seconds"
    if raw is None or raw is MISSING:
        return "time is missing"
    return f"time {raw!r} is neither an ISO 8601 string nor epoch seconds"


def parse_value(raw) -> float | str:
    if isinstance(raw, bool) or raw is None or raw is MISSING:
        return "value is missing" if raw is None or raw is MISSING else f"value {raw!r} is not a number"
    if isinstance(raw, (int, float)):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            return f"value {raw[:40]!r} is not a number"
    else:
        return f"value {raw!r} is not a number"
    if not math.isfinite(value):
        return "value is NaN or Infinity; send a finite number or leave the reading out"
    return value


def validate(columns: Columns, rules: dict[str, SensorRule], *, now: datetime) -> Validated:
    """The hot path of ingestion: one loop, no per-item objects beyond the output rows."""
    out = Validated()
    latest_allowed = now + timedelta(seconds=settings.SENSORHUB_MAX_FUTURE_SECONDS)
    seen: set[tuple[int, datetime]] = set()
    malformed = columns.malformed
    # Gateways send many sensors at the same instants: parse each distinct time text once.
    parsed_times: dict = {}
    rejected, keep_index = out.rejected.append, out.indexes.append
    keep_sensor, keep_time, keep_value = out.sensor_ids.append, out.times.append, out.values.append
    for index, (slug, raw_time, raw_value) in enumerate(zip(columns.sensors, columns.times, columns.values)):
        if malformed and index in malformed:
            rejected(reject(index, None, "malformed", malformed[index]))
            continue
        rule = rules.get(slug) if isinstance(slug, str) else None
        if rule is None or not rule.allowed or not rule.active:
            rejected(_sensor_rejection(index, slug, rule))
            continue
        at = parsed_times.get(raw_time) if isinstance(raw_time, str) else None
        if at is None:
            at = parse_time(raw_time)
            if isinstance(raw_time, str):
                parsed_times[raw_time] = at
        if at.__class__ is str:
            rejected(reject(index, slug, "invalid_time", at))
            continue
        value = raw_value if raw_value.__class__ is float and math.isfinite(raw_value) else parse_value(raw_value)
        if value.__class__ is str:
            rejected(reject(index, slug, "invalid_value", value))
            continue
        if at > latest_allowed:
            rejected(reject(index, slug, "time_in_future",
                            f"time {at.isoformat()} is more than {settings.SENSORHUB_MAX_FUTURE_SECONDS} s "
                            "in the future; check the device clock"))
            continue
        if at < rule.oldest:
            rejected(reject(index, slug, "older_than_retention",
                            f"time {at.isoformat()} is older than the sensor's retention "
                            f"(readings before {rule.oldest.isoformat()} are not kept)"))
            continue
        if (rule.valid_min is not None and value < rule.valid_min) or (
                rule.valid_max is not None and value > rule.valid_max):
            rejected(reject(index, slug, "out_of_range",
                            f"value {value:g} is outside the sensor's valid range "
                            f"[{_fmt(rule.valid_min, '-inf')}, {_fmt(rule.valid_max, 'inf')}]"))
            continue
        key = (rule.id, at)
        if key in seen:
            out.duplicates_in_batch.append(index)
            continue
        seen.add(key)
        keep_index(index)
        keep_sensor(rule.id)
        keep_time(at)
        keep_value(value)
    return out


def _sensor_rejection(index: int, slug, rule: SensorRule | None) -> dict:
    if rule is None:
        reason = ("sensor is missing" if slug in (None, "") else
                  f"sensor {str(slug)[:64]!r} does not exist; create it first (admin or POST /api/v1/sensors/)")
        return reject(index, slug, "unknown_sensor", reason)
    if not rule.allowed:
        return reject(index, slug, "sensor_not_allowed", f"this API key may not write to sensor {slug!r}")
    return reject(index, slug, "inactive_sensor", f"sensor {slug!r} is inactive; activate it to accept readings")


def _fmt(bound: float | None, unbounded: str) -> str:
    return unbounded if bound is None else f"{bound:g}"
