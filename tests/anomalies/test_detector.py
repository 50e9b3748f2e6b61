import csv
import io
import json
import math
import pickle
import random

import pytest
from django.core.management import CommandError, call_command

from anomalies.detector import Settings, StreamingDetector


def seasonal(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [20 + 3 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 0.3) for i in range(n)]


def scores(values, **settings) -> list[float]:
    return [d.score for d in StreamingDetector(Settings(**settings)).score_many(values)]


def test_a_score_depends_only_on_the_readings_before_it():
    values = seasonal(3000)
    head = scores(values[:2000])
    assert scores(values)[:2000] == head
    # fed in pieces, the detector gives the same scores as in one go
    detector = StreamingDetector()
    pieces = [d.score for part in (values[:700], values[700:1500], values[1500:2000]) for d in detector.score_many(part)]
    assert pieces == head


def test_little_history_is_reported_as_warming_up():
    detections = StreamingDetector().score_many(seasonal(Settings().warmup + 200))
    warmup = Settings().warmup
    assert all(d.warming_up and d.score == 0 for d in detections[:warmup])
    assert "warming up" in detections[0].explanation(20.0)
    assert not detections[warmup].warming_up


def test_a_spike_is_the_top_score_and_is_explained():
    values = seasonal(3000)
    values[2500] += 15
    detections = StreamingDetector().score_many(values)
    top = max(range(len(values)), key=lambda i: detections[i].score)
    assert top == 2500
    assert detections[2500].kind == "spike"
    text = detections[2500].explanation(values[2500])
    assert f"{values[2500]:.4g}" in text and "usual range" in text


def test_a_reading_beyond_everything_seen_so_far_scores_one_and_says_so():
    values = seasonal(3000)
    top = max(values)
    values[2000] = top + 0.3 * (top - min(values))  # 30 % above the highest reading so far
    detections = StreamingDetector().score_many(values)
    assert detections[2000].score == 1.0
    assert "beyond every value reported so far" in detections[2000].explanation(values[2000])
    # an ordinary reading is not explained by the range test
    assert "beyond every value" not in detections[2500].explanation(values[2500])


def test_a_new_record_counts_for_less_while_the_range_is_still_growing():
    def record_score(previous_record_at):
        values = seasonal(3000)
        width = max(values) - min(values)
        values[previous_record_at] = max(values) + 0.05 * width
        values[2000] = max(values) + 0.05 * width  # 5 % beyond: a record, but a modest one
        return scores(values)[2000]

    assert record_score(300) > 0.8  # the range had been stable for 1,700 readings …
    assert record_score(1700) < 0.5  # … not when the last record was 300 readings ago


def test_one_event_raises_one_alarm_not_dozens():
    values = seasonal(3000)
    for i in range(2000, 2300):
        values[i] += 10  # a level shift that lasts
    result = scores(values)
    assert result[2000] == 1.0
    assert sum(r >= 0.3 for r in result[2000:2300]) <= 3


def test_a_pickled_detector_continues_exactly_where_it_left_off():
    values = seasonal(4000)
    values[3500] += 12
    whole = scores(values)
    detector = StreamingDetector()
    detector.score_many(values[:2500])
    restored = pickle.loads(pickle.dumps(detector))  # how services.py keeps a sensor's model between runs
    assert [d.score for d in restored.score_many(values[2500:])] == whole[2500:]


def test_a_stuck_sensor_is_noticed_as_stuck_but_not_anomalous_forever():
    values = seasonal(2000) + [21.0] * 2000
    detections = StreamingDetector().score_many(values)
    result = [d.score for d in detections]
    onset = max(range(2000, 2100), key=lambda i: result[i])
    assert result[onset] > max(result[1000:2000])  # the change is noticed …
    assert detections[onset].kind == "stuck"
    assert max(result[3000:]) < 0.5 * result[onset]  # … and then it is the new normal


def test_a_flat_series_stays_near_zero():
    assert max(scores([5.0] * 3000)) < 0.01


def test_score_stream_writes_one_score_per_reading(tmp_path):
    source, target = tmp_path / "series.csv", tmp_path / "scores.csv"
    values = seasonal(600)
    with open(source, "w") as handle:
        handle.write("timestamp,value\n")
        handle.writelines(f"2024-01-01 00:{i // 60:02d}:{i % 60:02d},{v}\n" for i, v in enumerate(values))
    call_command("score_stream", input=source, output=target, stdout=io.StringIO())
    rows = list(csv.reader(open(target)))
    assert rows[0] == ["timestamp", "anomaly_score"] and len(rows) == 601
    assert [float(r[1]) for r in rows[1:]] == scores(values)


def test_score_stream_explains_a_bad_file(tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("timestamp,value\n2024-01-01,warm\n")
    with pytest.raises(CommandError, match="line 2"):
        call_command("score_stream", input=source, output=tmp_path / "out.csv", stdout=io.StringIO())


def test_nab_benchmark_scores_a_corpus_and_prints_the_published_table(tmp_path):
    (tmp_path / "data" / "demo").mkdir(parents=True)
    values = seasonal(2000)
    for i in range(1500, 1510):
        values[i] += 12
    with open(tmp_path / "data" / "demo" / "one.csv", "w") as handle:
        handle.write("timestamp,value\n")
        handle.writelines(f"2024-01-{1 + i // 288:02d} {i % 288 // 12:02d}:{i % 12 * 5:02d}:00,{v}\n"
                          for i, v in enumerate(values))
    window = ["2024-01-06 04:00:00.000000", "2024-01-06 06:55:00.000000"]  # rows 1488–1523
    (tmp_path / "windows.json").write_text(json.dumps({"demo/one.csv": [window]}))
    out = io.StringIO()
    call_command("nab_benchmark", data=tmp_path, workers=1, stdout=out)
    text = out.getvalue()
    ours = next(line for line in text.splitlines() if line.startswith("Sensor Hub"))
    assert float(ours.split()[-3]) > 50  # standard profile: the spike is found early in its window
    assert "ARTime" in text and "Numenta HTM" in text


def test_the_fast_forest_scores_equal_scikit_learns():
    import numpy as np
    from sklearn.ensemble import IsolationForest

    from anomalies.detector import forest_outlyingness

    rng = np.random.default_rng(0)
    history = rng.normal(size=(3000, 5))
    forest = IsolationForest(n_estimators=50, max_samples=256, random_state=0).fit(history)
    probe = np.vstack([rng.normal(size=(200, 5)), rng.normal(6, 1, size=(5, 5))])
    assert np.allclose(forest_outlyingness(forest, probe), -forest.score_samples(probe))


def every_five_minutes(n: int, start: float = 1.7e9) -> list[float]:
    return [start + 300.0 * i for i in range(n)]


def test_evenly_spaced_timestamps_change_nothing_and_may_be_datetimes():
    from datetime import datetime, timezone

    values = seasonal(2500)
    values[2200] += 15
    times = every_five_minutes(len(values))
    assert scores(values) == [d.score for d in StreamingDetector().score_many(values, times=times)]
    as_datetimes = [datetime.fromtimestamp(t, tz=timezone.utc) for t in times]
    assert ([d.score for d in StreamingDetector().score_many(values, times=as_datetimes)]
            == [d.score for d in StreamingDetector().score_many(values, times=times)])
    with pytest.raises(ValueError, match="times"):
        StreamingDetector().score_many(values, times=times[:-1])


def test_readings_across_a_long_gap_are_not_treated_as_adjacent():
    # A daily cycle sampled every 5 minutes, with 6 hours missing: the reading after the gap is far from the one
    # before it, but it is where the cycle is at that time, not a spike.
    n = 3000
    times = every_five_minutes(n + 72)
    values = [20 + 3 * math.sin(2 * math.pi * (t - times[0]) / 86400) + random.Random(i).gauss(0, 0.05)
              for i, t in enumerate(times)]
    keep = [i for i in range(n + 72) if not 2400 <= i < 2472]  # the gap: 72 readings, 6 hours
    values, times = [values[i] for i in keep], [times[i] for i in keep]
    blind = StreamingDetector().score_many(values)  # without timestamps, the jump looks like a spike
    aware = StreamingDetector().score_many(values, times=times)
    assert blind[2400].score >= 0.5 and blind[2400].kind == "spike"
    assert aware[2400].score < 0.3  # below the alarm thresholds: a pause is not a value anomaly
    assert max(d.score for d in aware[2401:2600]) < 0.3
    text = aware[2400].explanation(values[2400])
    assert aware[2400].score == 0 or "silence" in text


def test_timestamps_continue_through_pieces_and_pickles():
    values = seasonal(4000)
    values[3500] += 12
    times = every_five_minutes(len(values))
    del values[2700:2760], times[2700:2760]  # a 5-hour gap
    whole = [d.score for d in StreamingDetector().score_many(values, times=times)]
    detector = StreamingDetector()
    detector.score_many(values[:2500], times=times[:2500])
    restored = pickle.loads(pickle.dumps(detector))
    assert [d.score for d in restored.score_many(values[2500:], times=times[2500:])] == whole[2500:]


def test_a_detector_pickled_before_timestamps_existed_still_scores_with_them():
    values = seasonal(3000)
    detector = StreamingDetector()
    detector.score_many(values[:2000])
    old = detector.__dict__
    del old["cadence"], old["likelihoods"]["gap"]  # what a detector pickled before timestamps holds
    old["likelihoods"]["forest"].__dict__.pop("settle")
    restored = pickle.loads(pickle.dumps(detector))
    later = values[2000:]
    later[500] = 99.0
    detections = restored.score_many(later, times=every_five_minutes(1000))
    assert len(detections) == 1000 and all(0 <= d.score <= 1 for d in detections)
    assert detections[500].score > 0.9 and detections[500].kind == "spike"  # it still finds what it should


def test_one_burst_does_not_redefine_the_typical_step():
    from sensorhub.ml.features import WindowFeatures

    values = seasonal(1200)
    for i in range(800, 806):  # a burst of huge steps
        values[i] += 40 * (-1) ** i
    values[1000] += 4  # later, a jump of ~10 ordinary steps
    clipped, unclipped = WindowFeatures(), WindowFeatures(step_clip=math.inf)
    spike = {}
    for name, features in (("clipped", clipped), ("unclipped", unclipped)):
        spike[name] = [features.update(x)[1] for x in values][1000]
    # measured against a typical step the burst inflated, the jump would look like ~3 steps
    assert spike["clipped"] > 7 and spike["clipped"] > 2.5 * spike["unclipped"]


def test_scoring_a_fork_leaves_the_detector_as_it_was():
    values = seasonal(2600)
    times = [60.0 * i for i in range(len(values))]
    detector = StreamingDetector()
    detector.score_many(values[:2500], times=times[:2500])
    frozen = detector.scoring_copy()
    assert frozen.forest is detector.forest  # shared, not copied
    before = pickle.dumps(frozen)
    spiked = values[2500:] + [99.0]
    forked = [d.score for d in frozen.fork().score_many(spiked, times=times[2500:] + [times[-1] + 60])]
    assert pickle.dumps(frozen) == before
    # a fork scores exactly as a full copy of the same state does
    copied = pickle.loads(pickle.dumps(frozen))
    assert forked == [d.score for d in copied.score_many(spiked, times=times[2500:] + [times[-1] + 60])]
    assert forked[-1] > 0.9
