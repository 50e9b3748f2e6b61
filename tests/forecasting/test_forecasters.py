"""forecasting.ml on synthetic series: selection, forecasts, intervals, persistence. No database."""
import joblib
import numpy as np
import pandas as pd
import pytest

from forecasting.ml import CANDIDATES, TIE_TOLERANCE, BacktestMetrics, required_history, select_forecaster
from forecasting.ml.base import fill_gaps

FAST = [name for name in CANDIDATES if name != "prophet"]


def hourly(values, start="2026-11-01"):
    index = pd.date_range(start, periods=len(values), freq="h", tz="UTC")
    return pd.Series(np.asarray(values, dtype=float), index=index)


def daily_cycle(n, *, noise=0.3, seed=0, level=20.0, amplitude=3.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return hourly(level + amplitude * np.sin(2 * np.pi * t / 24) + rng.normal(0, noise, n))


def random_walk(n, *, seed=0):
    rng = np.random.default_rng(seed)
    return hourly(50 + np.cumsum(rng.normal(0, 1, n)))


def assert_chosen_is_best(selection):
    best = min(m.mase for m in selection.metrics.values())
    chosen = selection.metrics[selection.chosen]
    assert chosen.mase <= best * (1 + TIE_TOLERANCE) + 1e-12
    if chosen.mase > best:  # a tie: only a faster model may win it
        winners = [m for m in selection.metrics.values() if m.mase == best]
        assert all(chosen.fit_seconds <= m.fit_seconds for m in winners)


def test_it_backtests_every_candidate_and_picks_a_seasonal_model_on_a_daily_cycle():
    selection = select_forecaster(daily_cycle(720), horizon=24, season=24)

    assert set(selection.metrics) == set(CANDIDATES)
    assert all(isinstance(m, BacktestMetrics) for m in selection.metrics.values())
    assert_chosen_is_best(selection)
    assert selection.scale == "seasonal_naive"
    assert selection.metrics["seasonal_naive"].mase < 0.5 * selection.metrics["naive"].mase
    assert selection.chosen != "naive"
    assert selection.model.name == selection.chosen
    assert selection.metrics[selection.chosen].mase < selection.metrics["naive"].mase


def test_it_is_not_worse_than_naive_on_a_random_walk():
    selection = select_forecaster(random_walk(720), horizon=24, season=24)

    assert_chosen_is_best(selection)
    better_naive = min(selection.metrics["naive"].mase, selection.metrics["seasonal_naive"].mase)
    assert selection.metrics[selection.chosen].mase <= better_naive * (1 + TIE_TOLERANCE)
    assert selection.scale == "seasonal_naive"


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_it_forecasts_the_steps_after_the_history_with_ordered_bounds(name):
    series = daily_cycle(400)
    model = select_forecaster(series, candidates=[name]).model

    frame = model.forecast(series, horizon=24, interval=0.9)

    assert list(frame.columns) == ["yhat", "lower", "upper"]
    expected = pd.date_range(series.index[-1] + pd.Timedelta(hours=1), periods=24, freq="h", tz="UTC")
    assert frame.index.equals(expected)
    assert np.isfinite(frame.to_numpy()).all()
    assert (frame["lower"] <= frame["yhat"]).all() and (frame["yhat"] <= frame["upper"]).all()
    assert (frame["upper"] - frame["lower"]).mean() > 0


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_it_forecasts_from_the_newest_history_without_refitting(name):
    series = daily_cycle(500, seed=3)
    model = select_forecaster(series.iloc[:400], candidates=[name], horizon=24).model

    frame = model.forecast(series, horizon=24)
    paths = model.predict_paths(fill_gaps(series.to_numpy()), series.index, np.array([len(series)]), 24)

    assert frame.index[0] == series.index[-1] + pd.Timedelta(hours=1)
    np.testing.assert_allclose(frame["yhat"].to_numpy(), paths[0])
    if name == "naive":
        assert (frame["yhat"] == series.iloc[-1]).all()


@pytest.mark.parametrize("name", ["naive", "ridge_lags", "ets"])
def test_models_that_condition_on_recent_values_follow_a_level_shift(name):
    series = daily_cycle(500, seed=4)
    model = select_forecaster(series, candidates=[name]).model
    jump = hourly(series.iloc[-48:].to_numpy() + 10, start=series.index[-1] + pd.Timedelta(hours=1))
    shifted = pd.concat([series, jump])

    before = model.forecast(series, horizon=24)["yhat"].mean()
    after = model.forecast(shifted, horizon=24)["yhat"].mean()

    # Trained on a stationary series, ridge may expect part of a jump to revert; it must still move most of the way.
    assert after - before > 3


def test_a_longer_horizon_than_trained_still_forecasts():
    series = daily_cycle(500, seed=5)
    model = select_forecaster(series, candidates=["ridge_lags"], horizon=12).model

    frame = model.forecast(series, horizon=30)

    assert len(frame) == 30 and np.isfinite(frame.to_numpy()).all()
    assert (frame["upper"] - frame["lower"]).iloc[-1] >= (frame["upper"] - frame["lower"]).iloc[11]


def test_it_round_trips_through_joblib(tmp_path):
    series = daily_cycle(720, seed=1)
    selection = select_forecaster(series, candidates=["seasonal_naive", "ridge_lags", "prophet"])
    joblib.dump(selection.model, tmp_path / "model.joblib")

    loaded = joblib.load(tmp_path / "model.joblib")

    pd.testing.assert_frame_equal(loaded.forecast(series, horizon=24), selection.model.forecast(series, horizon=24))


def test_it_survives_gaps_in_the_training_data_and_the_history():
    series = daily_cycle(720, seed=2)
    series.iloc[200:260] = np.nan  # a sensor off for 60 hours
    series.iloc[np.random.default_rng(0).choice(720, 40, replace=False)] = np.nan
    series.iloc[-5:] = np.nan  # ... and silent right now

    selection = select_forecaster(series, horizon=24, season=24)
    frame = selection.model.forecast(series, horizon=24)

    assert set(selection.metrics) == set(CANDIDATES)
    assert all(np.isfinite(m.mase) for m in selection.metrics.values())
    assert len(frame) == 24 and np.isfinite(frame.to_numpy()).all()
    assert frame.index[0] == series.index[-1] + pd.Timedelta(hours=1)


def test_a_history_with_missing_timestamps_is_put_on_the_regular_grid():
    series = daily_cycle(400, seed=6)
    model = select_forecaster(series, candidates=["seasonal_naive"]).model
    holes = series.drop(series.index[[100, 101, 250]])
    holes.index.freq = None

    frame = model.forecast(holes, horizon=24)

    pd.testing.assert_frame_equal(frame, model.forecast(series, horizon=24))


def test_three_days_of_history_still_selects_among_the_simple_models():
    series = daily_cycle(72, seed=7)

    selection = select_forecaster(series, horizon=24, season=24)

    assert {"naive", "seasonal_naive"} <= set(selection.metrics)
    assert "ridge_lags" in selection.skipped
    assert len(selection.model.forecast(series, horizon=24)) == 24


def test_too_short_a_history_is_a_clear_error():
    needed = required_history(horizon=24, season=24, folds=3)
    with pytest.raises(ValueError, match=f"need at least {needed} steps"):
        select_forecaster(daily_cycle(needed - 1), horizon=24, season=24)


def test_unknown_candidates_are_rejected():
    with pytest.raises(ValueError, match="unknown candidates"):
        select_forecaster(daily_cycle(200), candidates=["lstm"])


def test_interval_coverage_on_held_out_data_is_close_to_nominal():
    rng = np.random.default_rng(11)
    n_train, n_total = 720, 720 + 24 * 40
    t = np.arange(n_total)
    # A daily cycle whose amplitude wanders, plus a slowly drifting level and noise: no model is exact.
    values = 20 + (3 + 0.5 * np.sin(t / 200)) * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.05, n_total))
    series = hourly(values + rng.normal(0, 0.5, n_total))
    selection = select_forecaster(series.iloc[:n_train], horizon=24, season=24, candidates=FAST)

    hits = []
    for end in range(n_train, n_total - 24 + 1, 24):
        frame = selection.model.forecast(series.iloc[:end], horizon=24, interval=0.9)
        actual = series.iloc[end:end + 24].to_numpy()
        hits.append((actual >= frame["lower"].to_numpy()) & (actual <= frame["upper"].to_numpy()))

    coverage = np.mean(hits)
    assert 0.8 <= coverage <= 0.97, coverage
    assert 0.75 <= selection.metrics[selection.chosen].coverage <= 0.98
