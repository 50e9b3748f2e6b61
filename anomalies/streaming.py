"""Score a whole `timestamp,value` series with the production detector (default settings, no labels)."""
from __future__ import annotations

import csv
import time
from datetime import datetime, timezone
from pathlib import Path

from anomalies.detector import StreamingDetector


def read_series(path: Path) -> tuple[list[str], list[float]]:
    timestamps, values = [], []
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader)]
        if header[:2] != ["timestamp", "value"]:
            raise ValueError(f"{path}: expected the header 'timestamp,value', got {','.join(header)}")
        for line, row in enumerate(reader, start=2):
            try:
                values.append(float(row[1]))
            except (IndexError, ValueError):
                raise ValueError(f"{path}, line {line}: {row!r} has no numeric value") from None
            timestamps.append(row[0])
    return timestamps, values


def parse_times(timestamps: list[str]) -> list[float] | None:
    """ISO timestamps as epoch seconds (naive ones taken as UTC), so the detector sees gaps and irregular intervals;
    None when any of them is not a timestamp (the file is then scored as evenly spaced readings)."""
    times = []
    for text in timestamps:
        try:
            at = datetime.fromisoformat(text.strip())
        except ValueError:
            return None
        times.append((at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)).timestamp())
    return times


def score_file(source: Path, target: Path | None = None) -> tuple[list[str], list[float], float]:
    """Returns (timestamps, scores, readings per second of the detector)."""
    timestamps, values = read_series(source)
    times = parse_times(timestamps)
    began = time.perf_counter()
    scores = [d.score for d in StreamingDetector().score_many(values, times=times)]
    rate = len(values) / max(time.perf_counter() - began, 1e-9)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(["timestamp", "anomaly_score"])
            writer.writerows(zip(timestamps, scores))
    return timestamps, scores, rate
