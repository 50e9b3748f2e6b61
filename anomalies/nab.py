"""Numenta Anomaly Benchmark (NAB) scoring, as specified in ``benchmarks/README.md`` ("NAB protocol").

Pure Python + numpy/pandas (no Django). The README is the specification; where it is silent this module
follows NAB's own scorer (``nab/sweeper.py``, ``nab/optimizer.py``, ``nab/runner.py`` in numenta/NAB).
This is an independent implementation, checked against NAB's sweeper on random inputs.

Scoring of one file (row-based, rows kept in the order given; timestamps are only used to locate windows)
-------------------------------------------------------------------------------------------------------
* Probation: the first ``floor(min(0.15 * n_rows, 750))`` rows are not scored at all: a detection there
  is neither a true nor a false positive (NAB: ``min(floor(0.15 * n), 0.15 * 5000)``).
* Detection: ``score >= threshold``. NaN scores never detect.
* Window rows: a window ``[start, end]`` covers rows ``a..b``, where ``a`` / ``b`` are the first rows whose
  timestamp equals ``start`` / ``end`` (NAB requires both to be present and uses ``list.index``, i.e. the
  first occurrence; the real files contain duplicated timestamps and a backwards DST step, none at a window
  edge). If an edge timestamp is missing and the timestamps are sorted, ``a`` is the first row at or after
  ``start`` and ``b`` the last row at or before ``end`` (a window holding no row is then ignored); otherwise
  ``ValueError``. Overlapping windows are a ``ValueError``.
* True positive: only the earliest detection inside a window counts, worth
  ``tp * sigmoid(y) / sigmoid(-1)`` with ``y = -(b - i + 1) / (b - a + 1)`` for row ``i``. So the window's
  first row has ``y = -1`` and is worth exactly ``tp`` ("worth up to +1"), its last row has
  ``y = -1 / width`` (worth slightly more than 0). This is NAB's formula verbatim, including the division
  by ``sigmoid(-1) = 0.98661`` which makes a detection at the window start worth exactly ``tp``.
  (NAB keeps the *maximum* weight among detected rows of the window; the weight decreases strictly with
  the row, so that is the earliest detection.)
* False negative: a window with no detection among its scored rows costs ``-fn``.
* False positive: a detection outside every window costs ``fp * sigmoid(y)`` (negative), with
  ``y = (i - b_prev) / (width_prev - 1)`` relative to the most recent window that ended before row ``i``
  (NAB's denominator is ``width - 1``, not ``width``; for a 1-row window, where NAB would divide by zero,
  the denominator is 1). With no preceding window it costs the full ``-fp``.
  ``sigmoid(y) = 2 / (1 + e^(5y)) - 1`` for ``y <= 3`` and exactly ``-1.0`` for ``y > 3`` (NAB's clip).
* Windows and probation (README silent, NAB followed): probation rows are dropped *after* the per-row
  weights have been computed, so
  - a window entirely inside probation is ignored: no +tp, no -fn, and it is not counted in ``n_windows``;
  - a window that starts inside probation is scored on its remaining rows, still weighted relative to the
    *whole* window (so its best possible score is below ``tp``);
  - a window in probation still serves as the "previous window" for false positives after it.
  (On the 24 README files no window touches the probation period.)

Normalisation (README): ``100 * (S - S_null) / (S_perfect - S_null)`` over the summed raw scores with
``S_null = -fn * W`` and ``S_perfect = tp * W`` (= W, tp is 1 in every profile), where ``W`` is the number
of scored windows. A detector that fires exactly on each window's first row gets ``tp`` per window, i.e.
``S_perfect``, so the README's "perfect" detector and NAB's ``tpCount * tpWeight`` agree. NAB's null baseline
is the null detector run through the same scorer, which ignores windows inside probation, while its perfect
score counts every labelled window; here both use the scored windows (identical on the README corpus), so
the null detector always scores exactly 0 and the perfect one 100.

Threshold: one threshold for all files, chosen to maximise the summed raw score (equivalently the normalised
score). Candidates are every distinct score value of a scored row plus one value above them all (1.1 as in NAB
when scores are <= 1), i.e. every distinct detection set; ties go to the highest threshold (as NAB's stable
sort does). See :func:`sweep_threshold` for the exact O(n log n) sweep.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750
CLIP_Y = 3.0


@dataclass(frozen=True)
class Profile:
    """Weights of a true positive, a false positive and a false negative."""

    tp: float
    fp: float
    fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Profile(1.0, 0.22, 1.0),
    "reward_low_FN_rate": Profile(1.0, 0.11, 2.0),
}


@dataclass(frozen=True)
class FileScore:
    """Score of one file at one threshold.

    ``score`` is the raw NAB score S. ``tp`` / ``fn`` count *windows* (detected / missed, ``tp + fn ==
    n_windows``), ``fp`` counts detection *rows* outside windows; all after probation. (NAB's own TP/FN columns
    count rows inside windows; its FP column is the same as here.) ``n_windows`` is the number of scored
    windows, i.e. windows with at least one row after probation.
    """

    score: float
    tp: int
    fp: int
    fn: int
    n_windows: int


Window = tuple[pd.Timestamp, pd.Timestamp]


def load_windows(path: str | Path) -> dict[str, list[Window]]:
    """Read NAB's ``windows.json``: ``{"category/file.csv": [[start, end], ...]}`` -> timestamps."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return {key: [(pd.Timestamp(start), pd.Timestamp(end)) for start, end in spans] for key, spans in raw.items()}


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid ``2 / (1 + e^(5y)) - 1``, clipped to exactly -1.0 for ``y > 3`` (as NAB does).

    ``y = -1`` -> 0.98661, ``y = 0`` -> 0, ``y = 1`` -> -0.98661.
    """
    if y > CLIP_Y:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def _scaled_sigmoid_array(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    out = 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, CLIP_Y))) - 1.0
    return np.where(y > CLIP_Y, -1.0, out)


MAX_TP = scaled_sigmoid(-1.0)


def probation_rows(n_rows: int) -> int:
    """Number of leading rows that are not scored: floor(min(15 % of the rows, 750))."""
    return int(math.floor(min(PROBATION_FRACTION * n_rows, PROBATION_MAX_ROWS)))


@dataclass(frozen=True)
class _Layout:
    """Profile-independent per-row facts of one file, restricted to the rows after probation."""

    window: np.ndarray  # window number per scored row, -1 outside every window
    tp_unit: np.ndarray  # sigmoid(y) / sigmoid(-1) for rows in a window (else 0)
    fp_unit: np.ndarray  # sigmoid(y) (negative; -1 before the first window) for rows outside windows (else 0)
    n_windows: int  # number of scored windows; they are numbered 0..n_windows-1


def _edge_index(ts: pd.DatetimeIndex, when: pd.Timestamp, side: str, monotonic: bool) -> int:
    hits = np.flatnonzero(ts == when)
    if hits.size:
        return int(hits[0])
    if not monotonic:
        raise ValueError(f"window edge {when} is not a timestamp of the file and the timestamps are not sorted")
    if side == "start":
        return int(ts.searchsorted(when, side="left"))
    return int(ts.searchsorted(when, side="right")) - 1


def _as_timestamp(value, tz) -> pd.Timestamp:
    t = pd.Timestamp(value)
    if tz is not None and t.tzinfo is None:
        t = t.tz_localize(tz)
    elif tz is None and t.tzinfo is not None:
        t = t.tz_convert(None)
    return t


def _layout(timestamps, windows: Iterable) -> _Layout:
    ts = pd.DatetimeIndex(pd.to_datetime(pd.Index(timestamps)))
    n = len(ts)
    monotonic = ts.is_monotonic_increasing
    spans = []
    for start, end in windows:
        start, end = _as_timestamp(start, ts.tz), _as_timestamp(end, ts.tz)
        if end < start:
            raise ValueError(f"window ends before it starts: {start} .. {end}")
        a = _edge_index(ts, start, "start", monotonic)
        b = _edge_index(ts, end, "end", monotonic)
        if a <= b and a < n:
            spans.append((a, b))
    spans.sort()
    for (_, b0), (a1, _) in zip(spans, spans[1:]):
        if a1 <= b0:
            raise ValueError("windows overlap")

    rows = np.arange(n)
    window = np.full(n, -1, dtype=np.int64)
    tp_unit = np.zeros(n)
    fp_unit = np.full(n, -1.0)  # no window before: full false-positive weight
    for k, (a, b) in enumerate(spans):
        width = b - a + 1
        inside = slice(a, b + 1)
        window[inside] = k
        tp_unit[inside] = _scaled_sigmoid_array(-(b - rows[inside] + 1) / width) / MAX_TP
        next_a = spans[k + 1][0] if k + 1 < len(spans) else n
        after = slice(b + 1, next_a)
        fp_unit[after] = _scaled_sigmoid_array((rows[after] - b) / max(width - 1, 1))
    fp_unit[window >= 0] = 0.0

    p = probation_rows(n)
    window = window[p:]
    # Renumber the windows that keep at least one scored row as 0..W-1.
    kept = np.unique(window[window >= 0])
    remap = np.full(len(spans) + 1, -1, dtype=np.int64)
    remap[kept] = np.arange(kept.size)
    window = remap[window]  # index -1 maps to the last entry, which is -1
    return _Layout(window=window, tp_unit=tp_unit[p:], fp_unit=fp_unit[p:], n_windows=int(kept.size))


def _scores_array(scores, n_expected: int) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.size != n_expected:
        raise ValueError(f"expected {n_expected} scores (one per timestamp), got shape {s.shape}")
    return s


def _score_layout(layout: _Layout, scores: np.ndarray, threshold: float, profile: Profile) -> FileScore:
    detected = scores >= threshold  # NaN compares False
    outside = layout.window < 0
    fp_rows = detected & outside
    fp_total = profile.fp * float(layout.fp_unit[fp_rows].sum())

    # Weight of the earliest detection per window = the largest weight among its detections.
    hit = detected & ~outside
    best = np.full(layout.n_windows, -np.inf)
    np.maximum.at(best, layout.window[hit], layout.tp_unit[hit])
    found = np.isfinite(best)
    tp_total = profile.tp * float(best[found].sum())
    n_found = int(found.sum())
    n_missed = layout.n_windows - n_found
    return FileScore(
        score=tp_total + fp_total - profile.fn * n_missed,
        tp=n_found,
        fp=int(fp_rows.sum()),
        fn=n_missed,
        n_windows=layout.n_windows,
    )


def score_file(timestamps, scores, windows, threshold: float, profile: Profile) -> FileScore:
    """Raw NAB score of one file at ``threshold`` (see the module docstring for every rule)."""
    ts = pd.Index(timestamps)
    s = _scores_array(scores, len(ts))
    layout = _layout(ts, windows)
    return _score_layout(layout, s[len(s) - layout.window.size:], threshold, profile)


def normalised_score(raw_total: float, windows_total: int, profile: Profile) -> float:
    """``100 * (S - S_null) / (S_perfect - S_null)``, ``S_null = -fn * W``, ``S_perfect = tp * W``.

    ``raw_total`` is the raw score summed over files and ``windows_total`` the number of scored windows
    summed over files (``FileScore.n_windows``).
    """
    if windows_total <= 0:
        raise ValueError("the normalised NAB score is undefined without any scored window")
    null = -profile.fn * windows_total
    perfect = profile.tp * windows_total
    return 100.0 * (raw_total - null) / (perfect - null)


def _sweep_layouts(prepared: Sequence[tuple[_Layout, np.ndarray]], profile: Profile) -> tuple[float, float]:
    """Exact sweep over every distinct detection set; returns (threshold, best raw total)."""
    event_scores: list[np.ndarray] = []
    event_deltas: list[np.ndarray] = []
    n_windows = 0
    for layout, scores in prepared:
        valid = ~np.isnan(scores)
        outside = (layout.window < 0) & valid
        # A false positive adds its (negative) weight as soon as the threshold reaches its score.
        event_scores.append(scores[outside])
        event_deltas.append(profile.fp * layout.fp_unit[outside])
        # In a window the contribution is the running maximum of the weights of its detected rows, starting
        # from -fn; record the increments of that running maximum in order of decreasing score.
        inside = (layout.window >= 0) & valid
        w_ids = layout.window[inside]
        w_scores = scores[inside]
        w_weights = profile.tp * layout.tp_unit[inside]
        order = np.lexsort((-w_scores, w_ids))  # by window, then by decreasing score
        w_ids, w_scores, w_weights = w_ids[order], w_scores[order], w_weights[order]
        running = w_weights.copy()
        starts = np.flatnonzero(np.r_[True, w_ids[1:] != w_ids[:-1]]) if w_ids.size else np.array([], int)
        for lo, hi in zip(starts, np.r_[starts[1:], w_ids.size]):
            running[lo:hi] = np.maximum.accumulate(running[lo:hi])
        previous = np.empty_like(running)
        if running.size:
            previous[1:] = running[:-1]
            previous[starts] = -profile.fn
        event_scores.append(w_scores)
        event_deltas.append(running - previous)
        n_windows += layout.n_windows

    base = -profile.fn * n_windows
    s = np.concatenate(event_scores) if event_scores else np.array([])
    d = np.concatenate(event_deltas) if event_deltas else np.array([])
    above = 1.1 if s.size == 0 or s.max() < 1.1 else float(np.nextafter(s.max(), np.inf))
    if s.size == 0:
        return above, base
    order = np.argsort(-s, kind="stable")
    s, d = s[order], d[order]
    totals = base + np.cumsum(d)
    # The detection set for threshold t is every event with score >= t: read the total at the last event of
    # each run of equal scores.
    last_of_run = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    thresholds = np.r_[above, s[last_of_run]]
    candidates = np.r_[base, totals[last_of_run]]
    best = int(np.argmax(candidates))  # first maximum = highest threshold among ties
    return float(thresholds[best]), float(candidates[best])


def sweep_threshold(files: Sequence[tuple], profile: Profile) -> tuple[float, float]:
    """Best shared threshold for ``files = [(timestamps, scores, windows), ...]`` and its normalised score.

    Exact, in O(n log n) over all scored rows: each row becomes an "event" at its anomaly score, whose delta is
    the change of the total raw score when the threshold drops to that score and the row becomes a detection:
    its false-positive weight outside windows; inside a window, the increase of the window's best weight
    (the running maximum, starting at -fn, over the window's rows taken by decreasing score), which is zero
    unless the row is earlier than every detection so far. Sorting all events by decreasing score and taking
    the cumulative sum gives the total for every candidate threshold at once (the same idea as NAB's
    ``calcScoreByThreshold``, without its per-row ``sum`` over all windows).
    """
    prepared = []
    for timestamps, scores, windows in files:
        ts = pd.Index(timestamps)
        s = _scores_array(scores, len(ts))
        layout = _layout(ts, windows)
        prepared.append((layout, s[len(s) - layout.window.size:]))
    threshold, raw = _sweep_layouts(prepared, profile)
    return threshold, normalised_score(raw, sum(lay.n_windows for lay, _ in prepared), profile)


def score_corpus(
    results: Mapping[str, tuple],
    windows: Mapping[str, list],
    profiles: Mapping[str, Profile] = PROFILES,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, tuple[float, float]]:
    """Score a detector's output on a corpus: ``{profile: (threshold, normalised score)}``.

    ``results`` maps file keys (as in ``windows.json``) to ``(timestamps, scores)``; every key must have an entry
    in ``windows`` (possibly an empty list). Only the files in ``results`` are scored.

    By default (the README protocol) each profile's threshold is swept to maximise the total over the files
    given. ``thresholds={profile: threshold}`` scores at fixed thresholds instead, e.g. NAB's
    ``config/thresholds.json``, which were tuned on NAB's whole 58-file corpus: that is how the README's
    published table was produced (with them this scorer reproduces every row of it to 0.1); re-sweeping on the
    24 files gives those detectors up to ~6 points more.
    """
    missing = [key for key in results if key not in windows]
    if missing:
        raise KeyError(f"no windows for: {', '.join(missing)}")
    prepared = []
    for key, (timestamps, scores) in results.items():
        ts = pd.Index(timestamps)
        s = _scores_array(scores, len(ts))
        layout = _layout(ts, windows[key])
        prepared.append((layout, s[len(s) - layout.window.size:]))
    n_windows = sum(lay.n_windows for lay, _ in prepared)
    out = {}
    for name, profile in profiles.items():
        if thresholds is None:
            threshold, raw = _sweep_layouts(prepared, profile)
        else:
            threshold = float(thresholds[name])
            raw = sum(_score_layout(lay, s, threshold, profile).score for lay, s in prepared)
        out[name] = (threshold, normalised_score(raw, n_windows, profile))
    return out
