import math
import random
from datetime import timedelta

from django.utils import timezone

from ingestion.parsing import Columns
from ingestion.services import readings_ingest


def now_hour():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def daily_cycle(days: float, *, end, every=timedelta(minutes=10), seed=1, level=20.0, amplitude=3.0, trend=0.0):
    """Readings every ``every`` up to ``end``: a daily sine, optional trend per day, a little noise."""
    rng = random.Random(seed)
    n = int(days * 86400 / every.total_seconds())
    times = [end - every * (n - i) for i in range(n)]
    values = [level + amplitude * math.sin(2 * math.pi * (t.timestamp() % 86400) / 86400)
              + trend * (i * every.total_seconds() / 86400) + rng.gauss(0, 0.1 * amplitude)
              for i, t in enumerate(times)]
    return times, values


def ingest(slug, times, values):
    body = readings_ingest(columns=Columns(sensors=[slug] * len(times), times=[t.isoformat() for t in times],
                                           values=values)).body
    assert body["accepted"] == len(times), body
    return body
