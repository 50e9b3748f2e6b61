"""The anomaly detector: one code path for live scoring and for the benchmarks (score_stream, nab_benchmark).

Per reading, causally (only that reading and the ones before it):
1. signals: how rare the reading's value and its transition from the previous value are in the recent history
   (``novelty``), and how unusual its window features are to an Isolation Forest refitted periodically on the past
   (``forest``; features from sensorhub.ml.features), plus sudden jumps, level, variance and stuck-value signals
   from the same features;
2. each signal calibrated into a likelihood: the short-term mean of the signal against its own long-run
   distribution, so a noisy series does not alarm more often than a calm one;
3. a range test (as in Numenta's HTM detector): a reading beyond everything the sensor has reported so far, by more
   than ``range_tolerance`` of that range, scores 1 — the likelihoods adapt to slow drifts, this test does not;
4. the strongest of these is the score; a score that does not exceed the highest of the last ``refractory`` ones is
   damped, so one event raises one alarm, not dozens.

The score is in [0, 1]. Each detection is explained in a technician's terms: what kind of change (level, spike,
variance, stuck value, pattern break), the observed value and the range the recent history makes normal.
"""
from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.ensemble._iforest import _average_path_length

from sensorhub.ml.features import Ewm, WindowFeatures


@dataclass(frozen=True)
class Settings:
    warmup: int = 500  # readings before any score: "warming up" instead of guessing (150 doubled the demo's false
    # alarms: the first few hundred scores came from likelihoods and a range that had not settled yet)
    bins: int = 20  # value resolution of the novelty signal, over the range seen so far
    novelty_history: int = 3000  # readings the rarity of a value is judged against
    likelihood_span: float = 1000.0
    short_window: int = 5  # novelty is averaged over this many readings: sustained changes, not single blips
    use_features: bool = True  # spike, level, variance and stuck signals from the window features
    refractory: int = 200  # readings over which a new alarm must beat the last one (400: NAB 59.1, 100: 62.4)
    damping: float = 0.2
    use_forest: bool = True
    refit_every: int = 2000  # readings between forest refits (on the past only); 500 halved the speed
    forest_history: int = 3000
    forest_trees: int = 50
    seed: int = 0
    range_tolerance: float = 0.02  # beyond the range seen so far by this fraction of it: score 1 (0.05: NAB 56.7)


@dataclass(frozen=True)
class Detection:
    score: float
    kind: str
    expected_low: float
    expected_high: float
    warming_up: bool
    reason: str = ""  # the test that drove the score, in a technician's words

    def explanation(self, value: float) -> str:
        if self.warming_up:
            return "warming up: not enough history to judge yet"
        text = f"{self.kind}: observed {value:.4g}, usual range {self.expected_low:.4g} to {self.expected_high:.4g}"
        return f"{text}; {self.reason}" if self.reason else text


class Novelty:
    """Rarity of a value's bin and of the (previous bin → bin) transition in the last ``history`` readings."""

    def __init__(self, bins: int, history: int):
        self.bins, self.history = bins, history
        self.low = self.high = None
        self.counts: dict = defaultdict(int)
        self.transitions: dict = defaultdict(int)
        self.recent: deque = deque()
        self.previous = None

    def update(self, x: float) -> float:
        if self.low is None:
            self.low = self.high = x
            return 0.0
        span = self.high - self.low
        b = max(-1, min(self.bins, int((x - self.low) / span * self.bins))) if span > 0 else 0
        key = (self.previous, b)
        n = len(self.recent) + 1
        p_value = (self.counts[b] + 0.5) / (n + 1)
        p_transition = (self.transitions[key] + 0.5) / (self.counts[self.previous] + 1)
        surprise = -math.log(p_value) - math.log(p_transition)
        self.recent.append((b, key))
        self.counts[b] += 1
        self.transitions[key] += 1
        if len(self.recent) > self.history:
            old_bin, old_key = self.recent.popleft()
            self.counts[old_bin] -= 1
            self.transitions[old_key] -= 1
        self.previous = b
        self.low, self.high = min(self.low, x), max(self.high, x)
        return surprise


class Likelihood:
    """The short-term mean of a signal against its long-run distribution, as a score in [0, 1] (log scale: the
    top of the range separates tails of 1e-6 from 1e-30, where the alarms are). Judging the short-term mean against the
    distribution of the raw signal scored 3-4 NAB points more than against the distribution of that mean
    (Numenta's form) once the range test was in."""

    def __init__(self, span: float, short: int):
        self.stats = Ewm(span)
        self.recent: deque = deque(maxlen=short)

    def update(self, signal: float) -> float:
        self.recent.append(signal)
        short = sum(self.recent) / len(self.recent)
        stats = self.stats
        excess = short - stats.mean
        # Rounding noise on a signal that never varied is not evidence.
        unchanged = abs(excess) <= 1e-9 * (1.0 + abs(stats.mean))
        # A signal that barely varies (a flat or stuck series) must move by a few percent to count.
        spread = max(stats.std, 0.02 * abs(stats.mean)) + 1e-9
        z = excess / spread if stats.n > 30 and not unchanged else 0.0
        stats.update(signal)
        if z <= 0:
            return 0.0  # no higher than usual: no evidence at all
        upper_tail = 0.5 * math.erfc(z / math.sqrt(2))  # P(Z > z)
        return min(1.0, -math.log10(max(upper_tail, 1e-300)) / 30.0)


@dataclass
class StreamingDetector:
    settings: Settings = field(default_factory=Settings)
    # Class-level fallbacks, so a detector pickled before the range test existed still loads and scores (its range
    # starts afresh).
    seen_low = None
    seen_high = None

    def __post_init__(self) -> None:
        s = self.settings
        self.features = WindowFeatures()
        self.novelty = Novelty(s.bins, s.novelty_history)
        self.likelihoods = {"novelty": Likelihood(s.likelihood_span, s.short_window),
                            "forest": Likelihood(s.likelihood_span, s.short_window),
                            # a spike must count on its own; level and variance changes are judged over a few readings
                            **{name: Likelihood(s.likelihood_span, 1 if name in INSTANT_SIGNALS else s.short_window)
                               for name in FEATURE_SIGNALS}}
        self.recent_scores: deque = deque(maxlen=s.refractory)
        self.feature_history: deque = deque(maxlen=s.forest_history)
        self.forest: IsolationForest | None = None
        self.seen = 0
        self.seen_low: float | None = None  # the range of every reading so far, for the range test
        self.seen_high: float | None = None

    def score_many(self, values) -> list[Detection]:
        """Score readings in order. With the forest on, its scores are computed in chunks that never cross a
        refit, so every reading is scored by a forest fitted on earlier readings only."""
        values = [float(v) for v in values]
        if not self.settings.use_forest:
            return self._score_chunk(values)
        out: list[Detection] = []
        i = 0
        while i < len(values):
            chunk = values[i:i + self.settings.refit_every - self.seen % self.settings.refit_every]
            out.extend(self._score_chunk(chunk))
            i += len(chunk)
            if self.seen % self.settings.refit_every == 0 and len(self.feature_history) >= 100:
                self.forest = IsolationForest(
                    n_estimators=self.settings.forest_trees, max_samples=min(256, len(self.feature_history)),
                    random_state=self.settings.seed).fit(np.asarray(self.feature_history))
        return out

    def _score_chunk(self, values: list[float]) -> list[Detection]:
        s = self.settings
        rows = []
        for x in values:
            long = self.features.long
            spread = 3 * max(long.std, self.features.abs_diff_long.mean)
            expected = (long.mean - spread, long.mean + spread)
            vector = self.features.update(x)
            rows.append((x, vector, expected, self.novelty.update(x)))
        forest_scores = (forest_outlyingness(self.forest, [r[1] for r in rows])
                         if s.use_forest and self.forest is not None and rows else None)
        out = []
        for i, (x, vector, (low, high), novelty) in enumerate(rows):
            self.seen += 1
            if s.use_forest:
                self.feature_history.append(vector)
            score, test = self.likelihoods["novelty"].update(novelty), "novelty"
            if s.use_features:
                for name, signal in zip(FEATURE_SIGNALS, _feature_signals(vector)):
                    likelihood = self.likelihoods[name].update(signal)
                    if likelihood > score:
                        score, test = likelihood, name
            if forest_scores is not None:
                likelihood = self.likelihoods["forest"].update(float(forest_scores[i]))
                if likelihood > score:
                    score, test = likelihood, "forest"
            # The range test: beyond everything seen so far (before this reading) by more than the tolerance.
            seen_low, seen_high = self.seen_low, self.seen_high
            if seen_low is None:
                self.seen_low = self.seen_high = x
            else:
                width = seen_high - seen_low
                if width > 0 and max(x - seen_high, seen_low - x) > s.range_tolerance * width:
                    score, test = 1.0, "range"
                self.seen_low, self.seen_high = min(seen_low, x), max(seen_high, x)
            if self.seen <= s.warmup:
                self.recent_scores.append(0.0)
                out.append(Detection(0.0, "none", low, high, True))
                continue
            # An alarm must beat the recent ones; repeats of the same event are damped.
            if self.recent_scores and score <= max(self.recent_scores):
                self.recent_scores.append(score)
                score *= s.damping
            else:
                self.recent_scores.append(score)
            reason = (TESTS[test] if test != "range"
                      else f"{TESTS[test]} ({seen_low:.4g} to {seen_high:.4g})") if score > 0 else ""
            out.append(Detection(round(score, 6), _kind(vector, x, low, high), low, high, False, reason))
        return out


def forest_outlyingness(forest: IsolationForest, rows) -> np.ndarray:
    """``-forest.score_samples(rows)``, computed tree by tree without scikit-learn's per-tree joblib dispatch,
    which cost ~1 ms per 100 readings per tree. Relies on the fitted forest's path-length tables (scikit-learn 1.9,
    pinned); tests/anomalies/test_detector.py checks it against score_samples."""
    X = np.asarray(rows, dtype=np.float32)
    depths = np.zeros(len(X))
    subsample = forest._max_features != X.shape[1]
    for tree, features, path_lengths, average_lengths in zip(
            forest.estimators_, forest.estimators_features_, forest._decision_path_lengths,
            forest._average_path_length_per_tree):
        leaves = tree.apply(X[:, features] if subsample else X, check_input=False)
        depths += path_lengths[leaves] + average_lengths[leaves] - 1.0
    denominator = len(forest.estimators_) * _average_path_length([forest._max_samples])[0]
    return 2.0 ** (-depths / denominator) if denominator else np.ones(len(X))


FEATURE_SIGNALS = ("spike", "level", "variance", "stuck")
INSTANT_SIGNALS = {"spike", "stuck"}
TESTS = {
    "novelty": "a value or step between values this sensor rarely shows",
    "forest": "an unusual mix of level, step size, trend and variability (isolation forest)",
    "spike": "a step far larger than its usual reading-to-reading steps",
    "level": "the recent average has moved away from the long-run average",
    "variance": "the recent variability differs from its usual variability",
    "stuck": "the same value repeated for longer than this sensor usually repeats one",
    "range": "beyond every value reported so far",
}


def _feature_signals(vector: tuple[float, ...]) -> tuple[float, ...]:
    level_z, spike_z, trend_z, volatility_ratio, stuck_event = vector
    return spike_z, abs(trend_z), abs(math.log(max(volatility_ratio, 1e-9))), stuck_event


def _kind(vector: tuple[float, ...], x: float, low: float, high: float) -> str:
    level_z, spike_z, trend_z, volatility_ratio, stuck_event = vector
    if stuck_event:
        return "stuck"
    if spike_z > 6:
        return "spike"
    if volatility_ratio > 3:
        return "variance"
    if not low <= x <= high or abs(trend_z) > 3:
        return "level"
    return "pattern"
