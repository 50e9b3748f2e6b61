"""NAB scoring (anomalies/nab.py), checked on small cases worked out by hand.

Hand arithmetic uses the identity  2/(1+e^(5y)) - 1 = -tanh(5y/2),  so
    sigmoid(-1) = tanh(2.5) = 0.9866143,  sigmoid(0) = 0,  sigmoid(1) = -tanh(2.5) = -0.9866143.
A detection in a window [a, b] (width w = b - a + 1) at row i has y = -(b - i + 1) / w and is worth
tp * sigmoid(y) / sigmoid(-1); a false positive at row i after a window ending at row b (width w) has
y = (i - b) / (w - 1) and costs fp * sigmoid(y) (negative), or -fp with no window before it.

Most cases use a 20-row file: probation = floor(min(0.15 * 20, 750)) = 3 rows (rows 0, 1, 2 unscored),
with one window on rows 8..11 (width 4).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anomalies.nab import (
    PROFILES,
    FileScore,
    Profile,
    load_windows,
    normalised_score,
    probation_rows,
    scaled_sigmoid,
    score_corpus,
    score_file,
    sweep_threshold,
)

STANDARD = PROFILES["standard"]
LOW_FP = PROFILES["reward_low_FP_rate"]
LOW_FN = PROFILES["reward_low_FN_rate"]
NAB_DIR = Path("/work/shared/benchmarks/nab")


def stamps(n):
    return pd.date_range("2024-01-01", periods=n, freq="min")


def window(ts, a, b):
    return (ts[a], ts[b])


def fires_at(n, *rows, value=1.0):
    scores = np.zeros(n)
    scores[list(rows)] = value
    return scores


def score20(*rows, windows=((8, 11),), profile=STANDARD, threshold=0.5):
    ts = stamps(20)
    return score_file(ts, fires_at(20, *rows), [window(ts, a, b) for a, b in windows], threshold, profile)


def test_it_uses_the_profiles_of_the_readme():
    assert STANDARD == Profile(tp=1.0, fp=0.11, fn=1.0)
    assert LOW_FP == Profile(1.0, 0.22, 1.0)
    assert LOW_FN == Profile(1.0, 0.11, 2.0)


def test_it_computes_the_scaled_sigmoid_at_minus_one_zero_and_one():
    # y = -1: 2/(1+e^-5) - 1 = tanh(2.5) = 0.98661430;  y = 0: 2/2 - 1 = 0;  y = 1: -tanh(2.5) = -0.98661430
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661430, abs=1e-8)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661430, abs=1e-8)
    # y = -0.5: tanh(1.25) = 0.84828364 (NAB's docstring: 0.84828)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828364, abs=1e-8)


def test_it_clips_the_sigmoid_to_minus_one_beyond_three_like_nab():
    # y = 3 is not clipped: -tanh(7.5) = -0.99999939;  anything above 3 is exactly -1.0
    assert scaled_sigmoid(3.0) == pytest.approx(-0.99999939, abs=1e-8)
    assert scaled_sigmoid(3.0) != -1.0
    assert scaled_sigmoid(3.0001) == -1.0
    assert scaled_sigmoid(1e6) == -1.0


def test_it_takes_the_probation_period_as_15_percent_capped_at_750_rows():
    # floor(0.15 * 20) = 3; floor(0.15 * 1243) = floor(186.45) = 186; 0.15 * 5000 = 750 = the cap; 0.15 * 22695 > 750
    assert probation_rows(20) == 3
    assert probation_rows(1243) == 186
    assert probation_rows(5000) == 750
    assert probation_rows(22695) == 750


def test_it_counts_a_detection_at_the_windows_first_row_as_exactly_tp():
    # row 8: y = -(11 - 8 + 1)/4 = -1 -> tp * sigmoid(-1)/sigmoid(-1) = 1.0
    assert score20(8) == FileScore(score=pytest.approx(1.0), tp=1, fp=0, fn=0, n_windows=1)


def test_it_counts_a_detection_at_the_windows_last_row_a_little_above_zero():
    # row 11: y = -(11 - 11 + 1)/4 = -0.25 -> tanh(0.625)/tanh(2.5) = 0.5545997/0.9866143 = 0.5621241
    result = score20(11)
    assert result.score == pytest.approx(0.5621241, abs=1e-7)
    assert (result.tp, result.fp, result.fn) == (1, 0, 0)


def test_it_charges_fn_for_a_window_without_detection():
    # nothing fires: -fn = -1 (standard), -2 (reward_low_FN_rate)
    assert score20() == FileScore(score=-1.0, tp=0, fp=0, fn=1, n_windows=1)
    assert score20(profile=LOW_FN).score == -2.0


def test_it_charges_the_full_fp_weight_before_any_window():
    # row 5 precedes every window: -fp = -0.11; window missed: -1; total -1.11 (-1.22 with fp = 0.22)
    result = score20(5)
    assert result.score == pytest.approx(-1.11)
    assert (result.tp, result.fp, result.fn) == (0, 1, 1)
    assert score20(5, profile=LOW_FP).score == pytest.approx(-1.22)


def test_it_weights_a_false_positive_just_after_a_window_by_the_sigmoid():
    # row 8: +1 (window start). row 12: y = (12 - 11)/(4 - 1) = 1/3 -> sigmoid = -tanh(5/6) = -0.6822618,
    # times fp 0.11 = -0.0750488. Total 1 - 0.0750488 = 0.9249512
    result = score20(8, 12)
    assert result.score == pytest.approx(0.9249512, abs=1e-7)
    assert (result.tp, result.fp, result.fn) == (1, 1, 0)


def test_it_weights_a_false_positive_far_after_a_narrow_window_at_full_cost():
    # window rows 5..6 (width 2, denominator w - 1 = 1).
    # row 10: y = (10 - 6)/1 = 4 > 3 -> clipped to -1 -> -0.11; plus the missed window -1: -1.11
    assert score20(10, windows=((5, 6),)).score == pytest.approx(-1.11, abs=1e-12)
    # row 9: y = 3, not clipped: -0.11 * tanh(7.5) = -0.1099999327; plus -1: -1.1099999327
    assert score20(9, windows=((5, 6),)).score == pytest.approx(-1.1099999327, abs=1e-10)


def test_it_counts_only_the_earliest_detection_in_a_window():
    # rows 9 and 10 fire; only row 9 counts: y = -(11 - 9 + 1)/4 = -0.75 -> tanh(1.875)/tanh(2.5)
    # = 0.9540453/0.9866143 = 0.9669891. Row 10 is neither a second TP nor an FP.
    result = score20(9, 10)
    assert result.score == pytest.approx(0.9669891, abs=1e-7)
    assert (result.tp, result.fp, result.fn) == (1, 0, 0)


def test_it_ignores_detections_in_the_probation_period():
    # row 2 is the last probation row: ignored -> only the missed window, -1. Row 3 is scored: -0.11 - 1.
    assert score20(2) == FileScore(score=-1.0, tp=0, fp=0, fn=1, n_windows=1)
    assert score20(3).score == pytest.approx(-1.11)


def test_it_scores_a_window_starting_in_probation_relative_to_the_whole_window():
    # window rows 1..4 (width 4), rows 1-2 in probation. Row 1 fires but is unscored; row 3 fires:
    # y = -(4 - 3 + 1)/4 = -0.5 -> tanh(1.25)/tanh(2.5) = 0.8482836/0.9866143 = 0.8597926 (not the full 1.0)
    result = score20(1, 3, windows=((1, 4),))
    assert result.score == pytest.approx(0.8597926, abs=1e-7)
    assert (result.tp, result.fn, result.n_windows) == (1, 0, 1)
    # its scored rows miss: -1
    assert score20(1, windows=((1, 4),)) == FileScore(score=-1.0, tp=0, fp=0, fn=1, n_windows=1)


def test_it_ignores_a_window_inside_probation_but_uses_it_for_later_false_positives():
    # window rows 0..2 (width 3) lies in probation: no -fn, not counted. Row 5 fires after it:
    # y = (5 - 2)/(3 - 1) = 1.5 -> -tanh(3.75) = -0.9988944, times 0.11 = -0.1098784
    assert score20(windows=((0, 2),)) == FileScore(score=0.0, tp=0, fp=0, fn=0, n_windows=0)
    result = score20(5, windows=((0, 2),))
    assert result.score == pytest.approx(-0.1098784, abs=1e-7)
    assert (result.tp, result.fp, result.fn, result.n_windows) == (0, 1, 0, 0)


def test_it_detects_at_or_above_the_threshold_and_never_on_nan():
    ts = stamps(20)
    scores = np.full(20, np.nan)
    scores[8] = 0.5
    # score == threshold is a detection: +1 at the window start
    assert score_file(ts, scores, [window(ts, 8, 11)], 0.5, STANDARD).score == pytest.approx(1.0)
    assert score_file(ts, scores, [window(ts, 8, 11)], 0.5000001, STANDARD).score == -1.0


def test_it_locates_window_edges_between_rows_when_timestamps_are_sorted():
    # window 07:30..11:30 on minute rows -> rows 8..11; a detection at row 8 is the window start: +1
    ts = stamps(20)
    edges = (ts[7] + pd.Timedelta(seconds=30), ts[11] + pd.Timedelta(seconds=30))
    assert score_file(ts, fires_at(20, 8), [edges], 0.5, STANDARD).score == pytest.approx(1.0)


def test_it_normalises_null_to_zero_and_perfect_to_one_hundred():
    # W = 3 windows. standard: S_null = -3, S_perfect = 3 -> raw 0 is 100 * (0 + 3)/(3 + 3) = 50.
    # reward_low_FN_rate: S_null = -6 -> raw 0 is 100 * 6/9 = 66.67
    assert normalised_score(-3.0, 3, STANDARD) == 0.0
    assert normalised_score(3.0, 3, STANDARD) == 100.0
    assert normalised_score(0.0, 3, STANDARD) == 50.0
    assert normalised_score(0.0, 3, LOW_FN) == pytest.approx(200 / 3)
    with pytest.raises(ValueError):
        normalised_score(0.0, 0, STANDARD)


def toy_corpus():
    """File A: 20 rows, window 8..11. File B: 40 rows (probation floor(0.15 * 40) = 6), windows 10..13, 25..30."""
    a, b = stamps(20), pd.date_range("2024-02-01", periods=40, freq="5min")
    return {
        "toy/a.csv": (a, [window(a, 8, 11)]),
        "toy/b.csv": (b, [window(b, 10, 13), window(b, 25, 30)]),
    }


def test_it_scores_the_perfect_and_the_null_detector_at_100_and_0():
    corpus = toy_corpus()
    first_rows = {"toy/a.csv": [8], "toy/b.csv": [10, 25]}
    # perfect: each window hit at its first row, +1 each -> raw 3 = S_perfect -> 100 on every profile
    perfect = {k: (ts, fires_at(len(ts), *first_rows[k])) for k, (ts, _) in corpus.items()}
    files = [(ts, s, corpus[k][1]) for k, (ts, s) in perfect.items()]
    raw = sum(score_file(ts, s, w, 0.5, STANDARD).score for ts, s, w in files)
    assert raw == pytest.approx(3.0)
    for name, profile in PROFILES.items():
        assert normalised_score(raw, 3, profile) == pytest.approx(100.0)
    # the null detector never fires: raw -fn * 3 -> 0 on every profile. (On so tiny a corpus a *constant* score
    # swept to "fire on every row" can beat it, so the all-zeros sweep is checked on the real files below.)
    for profile in PROFILES.values():
        null = [score_file(ts, np.zeros(len(ts)), w, 0.5, profile) for ts, w in corpus.values()]
        assert sum(r.score for r in null) == -3 * profile.fn
        assert normalised_score(sum(r.score for r in null), sum(r.n_windows for r in null), profile) == 0.0


def test_it_sweeps_to_the_obvious_threshold_on_a_toy_corpus():
    # background 0.1; each window's first row 0.9, its other rows 0.8; one stray 0.5 in file B at row 20
    # (after window 10..13: y = 7/3 -> costs 0.11 * tanh(35/6) = 0.1099981).
    # thresholds: 1.1 -> -3 (0); 0.9 -> +3 (100); 0.8 -> still +3 (earliest detections unchanged: a tie, the
    # higher threshold wins as in NAB); 0.5 -> 3 - 0.1099981; 0.1 -> many false positives. Best: 0.9, 100.
    corpus = toy_corpus()
    files = []
    for key, (ts, wins) in corpus.items():
        scores = np.full(len(ts), 0.1)
        for start, end in wins:
            inside = (ts >= start) & (ts <= end)
            scores[inside] = 0.8
            scores[ts.get_loc(start)] = 0.9
        if key == "toy/b.csv":
            scores[20] = 0.5
        files.append((ts, scores, wins))
    threshold, normalised = sweep_threshold(files, STANDARD)
    assert threshold == 0.9
    assert normalised == pytest.approx(100.0)


def test_it_trades_a_false_positive_against_a_missed_window():
    # file A alone (W = 1). Row 5 (before the window) scores 0.7, window row 8 scores 0.6.
    # t = 0.7: row 5 only: -0.11 - 1 = -1.11; t = 0.6: rows 5 and 8: -0.11 + 1 = 0.89 -> best;
    # t above: -1. Normalised 100 * (0.89 + 1)/2 = 94.5 (standard); low FP: 1 - 0.22 = 0.78 -> 89.0
    ts = stamps(20)
    scores = np.zeros(20)
    scores[5], scores[8] = 0.7, 0.6
    files = [(ts, scores, [window(ts, 8, 11)])]
    assert sweep_threshold(files, STANDARD) == (0.6, pytest.approx(94.5))
    assert sweep_threshold(files, LOW_FP) == (0.6, pytest.approx(89.0))


def test_it_sweeps_the_same_optimum_as_scoring_every_candidate_threshold():
    # no hand numbers: the fast sweep against score_file at every distinct score (brute force)
    rng = np.random.default_rng(7)
    files = []
    for n, wins in ((300, ((60, 90), (200, 240))), (150, ((10, 40),)), (500, ((100, 101), (400, 499)))):
        ts = stamps(n)
        files.append((ts, np.round(rng.random(n), 2), [window(ts, a, b) for a, b in wins]))
    for profile in PROFILES.values():
        candidates = sorted({float(v) for _, s, _ in files for v in s} | {1.1}, reverse=True)
        totals = []
        for t in candidates:
            results = [score_file(ts, s, w, t, profile) for ts, s, w in files]
            totals.append(normalised_score(sum(r.score for r in results), sum(r.n_windows for r in results), profile))
        best = int(np.argmax(totals))
        threshold, normalised = sweep_threshold(files, profile)
        assert normalised == pytest.approx(totals[best], abs=1e-9)
        assert threshold == candidates[best]


def test_it_scores_a_corpus_at_fixed_thresholds():
    # the perfect detector of the toy corpus at threshold 0.5: 100; at 2.0 nothing fires: 0
    corpus = toy_corpus()
    first_rows = {"toy/a.csv": [8], "toy/b.csv": [10, 25]}
    results = {k: (ts, fires_at(len(ts), *first_rows[k])) for k, (ts, _) in corpus.items()}
    windows = {k: w for k, (_, w) in corpus.items()}
    fixed = score_corpus(results, windows, thresholds={name: 0.5 for name in PROFILES})
    assert all(v == (0.5, pytest.approx(100.0)) for v in fixed.values())
    assert score_corpus(results, windows, {"standard": STANDARD}, thresholds={"standard": 2.0}) == {
        "standard": (2.0, 0.0)
    }
    with pytest.raises(KeyError):
        score_corpus({"toy/missing.csv": results["toy/a.csv"]}, windows)


def test_it_loads_windows_json(tmp_path):
    path = tmp_path / "windows.json"
    path.write_text(json.dumps({
        "realKnownCause/nyc_taxi.csv": [["2014-02-26 13:45:00.000000", "2014-02-27 06:25:00.000000"]],
        "realAWSCloudwatch/ec2_cpu_utilization_c6585a.csv": [],
    }))
    windows = load_windows(path)
    assert windows == {
        "realKnownCause/nyc_taxi.csv": [(pd.Timestamp("2014-02-26 13:45"), pd.Timestamp("2014-02-27 06:25"))],
        "realAWSCloudwatch/ec2_cpu_utilization_c6585a.csv": [],
    }
    assert isinstance(windows["realKnownCause/nyc_taxi.csv"][0][0], pd.Timestamp)


def test_it_scores_null_and_perfect_detectors_on_the_real_nab_files():
    if not (NAB_DIR / "windows.json").exists():
        pytest.skip(f"NAB data not found under {NAB_DIR}")
    windows = load_windows(NAB_DIR / "windows.json")
    data = {key: pd.read_csv(NAB_DIR / "data" / key, parse_dates=["timestamp"]).timestamp for key in windows}
    assert (len(windows), sum(len(w) for w in windows.values())) == (24, 49)
    zeros = {key: (ts, np.zeros(len(ts))) for key, ts in data.items()}
    assert {name: v[1] for name, v in score_corpus(zeros, windows).items()} == {name: 0.0 for name in PROFILES}
    perfect = {}
    for key, ts in data.items():
        scores = np.zeros(len(ts))
        for start, _ in windows[key]:
            scores[int(np.flatnonzero(ts == start)[0])] = 1.0
        perfect[key] = (ts, scores)
    for threshold, normalised in score_corpus(perfect, windows).values():
        assert threshold == 1.0
        assert normalised == pytest.approx(100.0)
