"""Streaming window features shared by anomaly training, scoring and the notebooks.

Everything is causal: the features of a reading use only that reading and the ones before it, updated in O(1) per
reading so one sensor can be scored at tens of thousands of readings a second.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


class Ewm:
    """Exponentially weighted mean and variance (West's incremental form)."""

    __slots__ = ("alpha", "mean", "var", "n")

    def __init__(self, span: float):
        self.alpha = 2.0 / (span + 1.0)
        self.mean = 0.0
        self.var = 0.0
        self.n = 0

    def update(self, x: float) -> None:
        if self.n == 0:
            self.mean, self.var = x, 0.0
        else:
            delta = x - self.mean
            self.mean += self.alpha * delta
            self.var = (1 - self.alpha) * (self.var + self.alpha * delta * delta)
        self.n += 1

    @property
    def std(self) -> float:
        return math.sqrt(self.var)


@dataclass
class WindowFeatures:
    """Per-reading features of one series. ``update`` returns the feature vector of the new reading,
    ``(level_z, spike_z, trend_z, volatility_ratio, stuck_event)``, computed against the state *before* the reading
    is absorbed (so an outlier does not hide itself)."""

    short_span: float = 6.0
    long_span: float = 300.0
    # A step is absorbed into the typical step as at most this many typical steps: one burst does not redefine
    # "typical" for the next few hundred readings, so a later, smaller jump still stands out (NAB standard 65.6 ->
    # 69.0 with the detector's refractory of 100; 4: 68.6, 6: 68.2). A lasting tenfold change of variability is absorbed within ~100 readings.
    step_clip: float = 5.0
    long: Ewm = field(init=False)
    short: Ewm = field(init=False)
    abs_diff_long: Ewm = field(init=False)
    abs_diff_short: Ewm = field(init=False)
    previous: float | None = field(default=None, init=False)
    run: int = field(default=0, init=False)
    completed_runs: deque = field(init=False)
    count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.long = Ewm(self.long_span)
        self.short = Ewm(self.short_span)
        self.abs_diff_long = Ewm(self.long_span)
        self.abs_diff_short = Ewm(self.short_span)
        self.completed_runs = deque(maxlen=100)

    def update(self, x: float, after_gap: bool = False) -> tuple[float, ...]:
        """``after_gap``: the reading follows a silence far longer than the sensor's usual interval, so it is not
        adjacent to the previous one: no step is measured across the gap and a repeated value does not extend a run.
        """
        scale = max(self.long.std, self.abs_diff_long.mean, 1e-9 + 1e-6 * abs(self.long.mean))
        diff = 0.0 if self.previous is None or after_gap else x - self.previous
        typical_step = max(self.abs_diff_long.mean, 1e-9 + 1e-6 * abs(self.long.mean))
        level_z = (x - self.long.mean) / scale if self.count else 0.0
        spike_z = abs(diff) / typical_step if self.count > 1 else 0.0
        self.short.update(x)
        trend_z = (self.short.mean - self.long.mean) / scale if self.count else 0.0
        if not after_gap:  # a step across a gap says nothing about the sensor's reading-to-reading variability
            self.abs_diff_short.update(abs(diff))
        # The same small floor on both sides: a flat series has a ratio of 1, not 0/tiny.
        floor = 1e-6 * (abs(self.long.mean) + 1.0)
        volatility_ratio = ((self.abs_diff_short.mean + floor) / (self.abs_diff_long.mean + floor)
                            if self.count > 1 else 1.0)
        same = self.previous is not None and x == self.previous and not after_gap
        if not same and self.run:
            self.completed_runs.append(self.run)
        self.run = self.run + 1 if same else 0
        # An event, raised once: the moment a value has been repeated twice as long as this series has repeated any
        # value lately (quantised data repeats a lot). A flat series is then simply its own normal.
        longest = max(self.completed_runs, default=0)
        stuck_event = 1.0 if same and self.run == 2 * (longest + 1) else 0.0
        self.long.update(x)
        if not after_gap:
            typical = self.abs_diff_long
            cap = self.step_clip * typical.mean if typical.n >= 20 else math.inf
            typical.update(min(abs(diff), cap))
        self.previous = x
        self.count += 1
        return (level_z, spike_z, trend_z, volatility_ratio, stuck_event)
