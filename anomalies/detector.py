"""The anomaly detector: one code path for live scoring and for the benchmarks (score_stream, nab_benchmark).

Per reading, causally (only that reading and the ones before it):
1. signals: how rare the reading's value and its transition from the previous value are in the recent history
   (``novelty``), and how unusual its window features are to an Isolation Forest refitted periodically on the past
   (``forest``; features from sensorhub.ml.features), plus sudden jumps, level, variance and stuck-value signals
   from the same features;
2. each signal calibrated into a likelihood: the short-term mean of the signal against its own long-run
   distribution, so a noisy series does not alarm more often than a calm one;
3. a range test (as in Numenta's HTM detector): a reading beyond everything the sensor has reported so far, by more
   than ``range_tolerance`` of that range — the likelihoods adapt to slow drifts, this test does not. It scores 1
   once the range has been stable for ``range_quiet`` readings or the reading is beyond it by ``range_excess`` of it,
   proportionally less before (a series whose range still grows every few hundred readings sets records routinely);
4. with timestamps (optional): the sensor's usual interval is learnt; a reading after a silence longer than
   ``gap_factor`` usual intervals is not compared with the one before the gap, and the silence, calibrated like a
   signal, raises its score by at most ``gap_weight`` (a pause alone stays below the alarm thresholds);
5. the strongest of these is the score; a score that does not exceed the highest of the last ``refractory`` ones is
   damped, so one event raises one alarm, not dozens.

The score is in [0, 1]. Each detection is explained in a technician's terms: what kind of change (level, spike,
variance, stuck value, pattern break), the observed value and the range the recent history makes normal.
"""
from __future__ import annotations

import copy
import math
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

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
    refractory: int = 100  # readings over which a new alarm must beat the last one (with the robust typical step,
    # NAB standard 69.0 from 50 to 150, 67.8 at 175-200; the demo finds more labels the shorter it is)
    damping: float = 0.2
    use_forest: bool = True
    refit_every: int = 2000  # readings between forest refits (on the past only); 500 halved the speed
    first_fit: int = 500  # the first forest, as the warmup ends (at 2000 its uncalibrated first scores were false alarms)
    forest_settle: int = 150  # forest scores the forest likelihood absorbs before it may score (30: NAB 65.3)
    forest_history: int = 3000
    forest_trees: int = 50
    seed: int = 0
    range_tolerance: float = 0.02  # beyond the range seen so far by this fraction of it: score 1 (0.05: NAB 56.7)
    range_quiet: int = 2000  # readings without a new record after which a new one scores 1 (1000: NAB 64.9)
    range_excess: float = 0.3  # ... or this far beyond the range, as a fraction of it (0.2: 65.1, 0.5: 61.7)
    # Timestamps (optional): a silence longer than gap_factor times the sensor's usual interval is a gap. The reading
    # after it is not compared with the one before (no step, no repeated value across a gap), and the silence,
    # calibrated like any signal, adds up to gap_weight to its score (noisy-OR): on its own a gap stays below the
    # alarm thresholds (a pause is not a value anomaly), together with an unusual value it tips the balance.
    gap_factor: float = 5.0
    gap_weight: float = 0.25
    interval_span: float = 200.0  # readings the usual interval is learnt over


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


class Cadence:
    """The sensor's usual interval between readings (geometric mean, learnt causally) and how long the silence before
    each reading was, relative to it."""

    def __init__(self, span: float, gap_factor: float):
        self.log_interval = Ewm(span)
        self.clip = math.log(gap_factor)
        self.last: float | None = None

    @property
    def usual(self) -> float:
        return math.exp(self.log_interval.mean)

    def update(self, t: float) -> tuple[float, float]:
        """Returns (seconds since the previous reading, that silence over the usual interval; 1 while unknown)."""
        last, self.last = self.last, t if self.last is None else max(self.last, t)
        if last is None or t <= last:
            return 0.0, 1.0  # the first reading, or a duplicated / backwards timestamp: no silence at all
        dt = t - last
        stats = self.log_interval
        known = stats.n >= 10
        ratio = dt / self.usual if known else 1.0
        # A gap moves the usual interval by at most a factor of gap_factor: a few long pauses do not redefine it.
        log_dt = math.log(dt)
        stats.update(min(max(log_dt, stats.mean - self.clip), stats.mean + self.clip) if known else log_dt)
        return dt, ratio


class Novelty:
    """Rarity of a value's bin and of the (previous bin → bin) transition in the last ``history`` readings."""

    def __init__(self, bins: int, history: int):
        self.bins, self.history = bins, history
        self.low = self.high = None
        self.counts: dict = defaultdict(int)
        self.transitions: dict = defaultdict(int)
        self.recent: deque = deque()
        self.previous = None

    def update(self, x: float, after_gap: bool = False) -> float:
        if self.low is None:
            self.low = self.high = x
            return 0.0
        span = self.high - self.low
        b = max(-1, min(self.bins, int((x - self.low) / span * self.bins))) if span > 0 else 0
        n = len(self.recent) + 1
        p_value = (self.counts[b] + 0.5) / (n + 1)
        if after_gap:
            # Not a transition from the reading before the gap: the value's own rarity stands in for it.
            key = None
            surprise = -2.0 * math.log(p_value)
        else:
            key = (self.previous, b)
            p_transition = (self.transitions[key] + 0.5) / (self.counts[self.previous] + 1)
            surprise = -math.log(p_value) - math.log(p_transition)
            self.transitions[key] += 1
        self.recent.append((b, key))
        self.counts[b] += 1
        if len(self.recent) > self.history:
            old_bin, old_key = self.recent.popleft()
            self.counts[old_bin] -= 1
            if old_key is not None:
                self.transitions[old_key] -= 1
        self.previous = b
        self.low, self.high = min(self.low, x), max(self.high, x)
        return surprise


class Likelihood:
    """The short-term mean of a signal against its long-run distribution, as a score in [0, 1] (log scale: the
    top of the range separates tails of 1e-6 from 1e-30, where the alarms are). Judging the short-term mean against the
    distribution of the raw signal scored 3-4 NAB points more than against the distribution of that mean
    (Numenta's form) once the range test was in."""

    settle = 30  # class-level fallback for likelihoods pickled before it was a setting

    def __init__(self, span: float, short: int, settle: int = 30):
        self.settle = settle
        self.stats = Ewm(span)
        self.recent: deque = deque(maxlen=short)

    def update(self, signal: float) -> float:
        # The hot path (7 likelihoods per reading): the long-run statistics are updated inline, same arithmetic as
        # Ewm.update.
        recent = self.recent
        recent.append(signal)
        stats = self.stats
        mean, n = stats.mean, stats.n
        excess = sum(recent) / len(recent) - mean
        z = 0.0
        # Only a short-term mean above the long-run one is evidence; rounding noise on a signal that never varied
        # is not, and a signal that barely varies (a flat or stuck series) must move by a few percent to count.
        if n > self.settle and excess > 1e-9 * (1.0 + abs(mean)):
            z = excess / (max(math.sqrt(stats.var), 0.02 * abs(mean)) + 1e-9)
        if n == 0:
            stats.mean, stats.var = signal, 0.0
        else:
            alpha, delta = stats.alpha, signal - mean
            stats.mean = mean + alpha * delta
            stats.var = (1 - alpha) * (stats.var + alpha * delta * delta)
        stats.n = n + 1
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
    range_extended = -10**9  # the reading count at the last new record
    forest_offset = 0.0
    # Set on a scoring copy: the silence before the next reading is how long ago the model was trained, not something
    # the sensor did, so it is not scored (the reading is still not compared with the one before the silence).
    ignore_next_silence = False

    def __post_init__(self) -> None:
        s = self.settings
        self.features = WindowFeatures()
        self.novelty = Novelty(s.bins, s.novelty_history)
        self.likelihoods = {"novelty": Likelihood(s.likelihood_span, s.short_window),
                            "forest": Likelihood(s.likelihood_span, s.short_window, s.forest_settle),
                            # a spike must count on its own; level and variance changes are judged over a few readings
                            **{name: Likelihood(s.likelihood_span, 1 if name in INSTANT_SIGNALS else s.short_window)
                               for name in FEATURE_SIGNALS}}
        self.recent_scores: deque = deque(maxlen=s.refractory)
        self.feature_history: deque = deque(maxlen=s.forest_history)
        self.forest: IsolationForest | None = None
        self.seen = 0
        self.seen_low: float | None = None  # the range of every reading so far, for the range test
        self.seen_high: float | None = None
        self._add_cadence()

    def _add_cadence(self) -> None:
        s = self.settings
        self.cadence = Cadence(s.interval_span, s.gap_factor)
        self.likelihoods["gap"] = Likelihood(s.likelihood_span, 1)

    def __setstate__(self, state: dict) -> None:
        # A detector pickled before timestamps were supported: it learns the sensor's interval from now on.
        self.__dict__.update(state)
        if "cadence" not in state:
            self._add_cadence()

    def scoring_copy(self) -> "StreamingDetector":
        """A copy of this detector that scores with its current forest but never refits it: the model as trained,
        as /detect_anomaly scores against it. It keeps no feature history (nothing to refit on), so ``fork`` is
        cheap. The time between the model's last reading and the first one it is given is not scored: points sent
        a day after training are not "the first reading after a day of silence"."""
        frozen = copy.copy(self)
        frozen.feature_history = deque(maxlen=0)
        frozen.ignore_next_silence = True
        return frozen.fork()

    def fork(self) -> "StreamingDetector":
        """An independent copy to score with: scoring the copy never changes this detector. The forest is shared
        (scoring only reads it; a refit replaces it). ~10x cheaper than a pickle round trip of the same state."""
        return _fork(self)

    def score_many(self, values, times=None) -> list[Detection]:
        """Score readings in order. ``times`` (optional, same length): each reading's timestamp, as datetimes or
        epoch seconds, so gaps and irregular intervals are taken into account; without them every reading is taken
        to follow the previous one at the usual interval.

        With the forest on, its scores are computed in chunks that never cross a refit, so every reading is scored
        by a forest fitted on earlier readings only. A detector with fewer than 100 rows of feature history (a
        ``scoring_copy``) keeps its forest."""
        values = [float(v) for v in values]
        if times is not None:
            times = [_epoch_seconds(t) for t in times]
            if len(times) != len(values):
                raise ValueError(f"{len(values)} values but {len(times)} times")
        if not self.settings.use_forest:
            return self._score_chunk(values, times)
        out: list[Detection] = []
        i = 0
        while i < len(values):
            s = self.settings
            if self.seen < s.first_fit:
                end = i + s.first_fit - self.seen
            else:
                end = i + s.refit_every - self.seen % s.refit_every
            chunk = values[i:end]
            out.extend(self._score_chunk(chunk, None if times is None else times[i:end]))
            i += len(chunk)
            if ((self.seen % s.refit_every == 0 or self.seen == s.first_fit)
                    and len(self.feature_history) >= 100):
                self.forest = IsolationForest(
                    n_estimators=self.settings.forest_trees, max_samples=min(256, len(self.feature_history)),
                    random_state=self.settings.seed).fit(np.asarray(self.feature_history))
                # Each forest's scores are centred on its median over its training rows, so a refit does not shift
                # the signal the forest likelihood judges (a flat series stays exactly flat).
                self.forest_offset = float(np.median(forest_outlyingness(self.forest, self.feature_history)))
        return out

    def _score_chunk(self, values: list[float], times: list[float] | None = None) -> list[Detection]:
        s = self.settings
        rows = []
        silences = []
        cadence = self.cadence
        for i, x in enumerate(values):
            long = self.features.long
            spread = 3 * max(long.std, self.features.abs_diff_long.mean)
            expected = (long.mean - spread, long.mean + spread)
            if times is None:
                vector = self.features.update(x)
                rows.append((x, vector, expected, self.novelty.update(x)))
                continue
            usual = cadence.usual
            silence, ratio = cadence.update(times[i])
            after_gap = ratio > s.gap_factor
            vector = self.features.update(x, after_gap)
            rows.append((x, vector, expected, self.novelty.update(x, after_gap)))
            if self.ignore_next_silence:
                self.ignore_next_silence = False
                silences.append((silence, usual, None, after_gap))
            else:
                silences.append((silence, usual, ratio, after_gap))
        forest_scores = (forest_outlyingness(self.forest, [r[1] for r in rows]) - self.forest_offset
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
                beyond = max(x - seen_high, seen_low - x)
                if width > 0 and beyond > s.range_tolerance * width:
                    quiet = self.seen - self.range_extended
                    self.range_extended = self.seen
                    surprise = min(1.0, max(quiet / s.range_quiet, beyond / width / s.range_excess))
                    if surprise >= score:
                        score, test = surprise, "range"
                self.seen_low, self.seen_high = min(seen_low, x), max(seen_high, x)
            gap_note, value_score = "", score
            if silences and silences[i][2] is not None:
                silence, usual, ratio, after_gap = silences[i]
                # The silence before this reading, calibrated against this sensor's silences (0 when on time).
                gap = self.likelihoods["gap"].update(math.log(ratio) if after_gap else 0.0)
                if after_gap:
                    score = 1.0 - (1.0 - score) * (1.0 - s.gap_weight * gap)
                    gap_note = f"first reading after {_duration(silence)} of silence (usual interval {_duration(usual)})"
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
                      else f"{TESTS[test]} ({seen_low:.4g} to {seen_high:.4g})") if value_score > 0 else ""
            if gap_note and score > 0:
                reason = f"{reason}; {gap_note}" if reason else gap_note
            after_gap = times is not None and silences[i][3]
            out.append(Detection(round(score, 6), _kind(vector, x, low, high, after_gap), low, high, False, reason))
        return out


def forest_outlyingness(forest: IsolationForest, rows) -> np.ndarray:
    """``-forest.score_samples(rows)``, computed tree by tree through each fitted tree's own ``tree_.apply``, without
    scikit-learn's per-tree joblib dispatch and input checks (together ~1 ms per 100 readings for 50 trees; this takes
    ~0.2 ms). Relies on the fitted forest's path-length tables (scikit-learn 1.9, pinned);
    tests/anomalies/test_detector.py checks it against score_samples."""
    X = np.ascontiguousarray(rows, dtype=np.float32)
    if X.ndim != 2 or not len(X):
        return np.ones(len(X))
    depths = np.zeros(len(X))
    subsample = forest._max_features != X.shape[1]
    for tree, features, path_lengths, average_lengths in zip(
            forest.estimators_, forest.estimators_features_, forest._decision_path_lengths,
            forest._average_path_length_per_tree):
        leaves = tree.tree_.apply(np.ascontiguousarray(X[:, features]) if subsample else X)
        depths += path_lengths[leaves] + average_lengths[leaves] - 1.0
    denominator = len(forest.estimators_) * _average_path(forest._max_samples)
    return 2.0 ** (-depths / denominator) if denominator else np.ones(len(X))


@lru_cache(maxsize=16)
def _average_path(samples: int) -> float:
    # scikit-learn's own function validates its input as an array: 0.3 ms, more than scoring one reading.
    return float(_average_path_length([samples])[0])


# What a fork shares with the original: values nobody changes in place (a refit replaces the forest, never edits it).
_SHARED = (int, float, str, bool, type(None), tuple, Settings, IsolationForest)


def _fork(value):
    """A copy of detector state in which every mutable part is new: objects attribute by attribute, dicts item by
    item. Deques are copied shallowly: the detector keeps only numbers and tuples in them."""
    if isinstance(value, _SHARED):
        return value
    if isinstance(value, deque):
        return value.copy()
    if isinstance(value, dict):
        copied = value.copy()  # a defaultdict keeps its factory
        for key, item in copied.items():
            if not isinstance(item, _SHARED):
                copied[key] = _fork(item)
        return copied
    clone = object.__new__(type(value))
    for name in getattr(type(value), "__slots__", ()):
        setattr(clone, name, _fork(getattr(value, name)))
    if hasattr(value, "__dict__"):
        clone.__dict__.update({name: _fork(item) for name, item in value.__dict__.items()})
    return clone


def _epoch_seconds(t) -> float:
    """A datetime (naive ones are taken as UTC), numpy datetime64 or epoch seconds, as epoch seconds."""
    if isinstance(t, np.datetime64):
        return float(t.astype("datetime64[ns]").astype(np.int64)) / 1e9
    if isinstance(t, datetime):
        return (t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)).timestamp()
    return float(t)


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= 2 * size if unit == "days" else seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


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


def _kind(vector: tuple[float, ...], x: float, low: float, high: float, after_gap: bool = False) -> str:
    level_z, spike_z, trend_z, volatility_ratio, stuck_event = vector
    if stuck_event:
        return "stuck"
    # After a gap there is no step to measure: a value far from the usual level is the spike until more readings say
    # whether it stays (then it is a level shift).
    if spike_z > 6 or (after_gap and abs(level_z) > 6):
        return "spike"
    if volatility_ratio > 3:
        return "variance"
    if not low <= x <= high or abs(trend_z) > 3:
        return "level"
    return "pattern"
