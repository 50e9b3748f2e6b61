"""Model selection by rolling-origin backtest.

The last stretch of the series (a quarter of it, at least ``folds`` horizons) is split into ``folds`` consecutive
blocks of forecast origins. Each candidate is fitted on the values before a block and forecasts from every origin in
the block, conditioning on the values up to that origin without refitting, exactly as a stored production model is
used between retrains. Errors are pooled over origins and steps (only steps with an observed value count).

MASE divides the MAE by the in-sample MAE of the seasonal naive forecast (value one season earlier) over the values
before the first block, or of the naive forecast (previous value) when that is shorter than two seasons or constant.
The lowest MASE wins; candidates within ``TIE_TOLERANCE`` of it count as tied and the fastest to fit among them wins.
Naive and seasonal naive are always candidates, so the choice is never worse on the backtest than the better of them:
a tie is settled by fit time, and nothing fits faster than the naive forecasts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.ml.base import (
    ForecastModel,
    error_quantiles,
    fill_gaps,
    future_positions,
    quantile_bounds,
    regular_series,
)
from forecasting.ml.models import DampedETSModel, NaiveModel, ProphetModel, RidgeLagsModel, SeasonalNaiveModel

CANDIDATES: dict[str, type[ForecastModel]] = {
    model.name: model
    for model in (NaiveModel, SeasonalNaiveModel, RidgeLagsModel, DampedETSModel, ProphetModel)
}
TIE_TOLERANCE = 0.01  # relative MASE difference under which two candidates count as equally accurate


@dataclass(frozen=True)
class BacktestMetrics:
    mase: float
    mae: float
    mape: float | None  # None when some actual value is zero
    coverage: float  # share of backtest actuals inside the interval calibrated on the other folds
    fit_seconds: float  # mean over the backtest fits


@dataclass
class Selection:
    model: ForecastModel
    chosen: str
    metrics: dict[str, BacktestMetrics]
    scale: str  # "seasonal_naive" or "naive": the in-sample forecast whose MAE scales the MASE
    skipped: dict[str, str] = field(default_factory=dict)  # candidate -> why it was not tried (too little history)


@dataclass(frozen=True)
class BacktestPlan:
    folds: list[np.ndarray]  # origins (number of known values) per block, in time order

    @property
    def origins(self) -> np.ndarray:
        return np.concatenate(self.folds)

    @property
    def first(self) -> int:
        return int(self.folds[0][0])


def required_history(*, horizon: int, season: int, folds: int) -> int:
    """The fewest steps of history select_forecaster accepts: one season (+2) to fit on, then ``folds`` origins."""
    return max(season, 1) + 2 + horizon + folds - 1


def backtest_plan(n: int, *, horizon: int, season: int, folds: int) -> BacktestPlan:
    needed = required_history(horizon=horizon, season=season, folds=folds)
    if n < needed:
        raise ValueError(
            f"not enough history to select a forecaster: need at least {needed} steps (one season of {season} "
            f"+ 2 to fit on, then {folds} backtest origins with a horizon of {horizon}), got {n}"
        )
    last = n - horizon
    span = max(folds * horizon, n // 4)
    first = max(max(season, 1) + 2, last - span + 1)
    return BacktestPlan(folds=[block for block in np.array_split(np.arange(first, last + 1), folds) if len(block)])


def backtest(candidate: type[ForecastModel], series: pd.Series, plan: BacktestPlan, *, horizon: int,
             season: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Forecasts and errors (origins x steps, NaN where the actual is missing) and the mean fit time."""
    raw = series.to_numpy(dtype=float)
    values = fill_gaps(raw)
    paths, seconds = [], []
    for block in plan.folds:
        started = time.perf_counter()
        model = candidate().fit(series.iloc[: int(block[0])], horizon=horizon, season=season)
        seconds.append(time.perf_counter() - started)
        # Values after the block's first origin are revealed to the model only as history, never as training data.
        paths.append(model.predict_paths(values, series.index, block, horizon))
    forecasts = np.vstack(paths)
    errors = raw[future_positions(plan.origins, horizon)] - forecasts
    return forecasts, errors, float(np.mean(seconds))


def mase_scale(values: np.ndarray, season: int) -> tuple[float, str]:
    """In-sample MAE of the seasonal naive forecast, or of the naive one when that is unavailable or zero."""
    for lag, kind in ((season, "seasonal_naive"), (1, "naive")):
        if lag < 1 or len(values) < 2 * lag + 1:
            continue
        diffs = np.abs(values[lag:] - values[:-lag])
        diffs = diffs[np.isfinite(diffs)]
        if len(diffs) and diffs.mean() > 0:
            return float(diffs.mean()), kind
    return 1.0, "none"


def select_forecaster(series: pd.Series, horizon: int = 24, season: int = 24, interval: float = 0.9,
                      candidates=None, folds: int = 3) -> Selection:
    """Backtest every candidate on ``series`` and return the best one, refitted on the whole series.

    ``series``: float values on a regular DatetimeIndex (NaN for missing steps); ``season``: steps per cycle.
    Raises ValueError when the series is too short (the message says how much history is needed)."""
    if horizon < 1 or season < 1 or folds < 1:
        raise ValueError("horizon, season and folds must be at least 1")
    if not 0 < interval < 1:
        raise ValueError("interval must be between 0 and 1")
    names = list(candidates or CANDIDATES)
    unknown = [name for name in names if name not in CANDIDATES]
    if unknown:
        raise ValueError(f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")
    series = regular_series(series)
    observed = np.flatnonzero(np.isfinite(series.to_numpy(dtype=float)))
    if not len(observed):
        raise ValueError("the series has no observed values")
    series = series.iloc[observed[0]:]  # steps before the first reading carry nothing
    observed = len(observed)
    plan = backtest_plan(len(series), horizon=horizon, season=season, folds=folds)
    if observed < required_history(horizon=horizon, season=season, folds=folds) // 2:
        raise ValueError(f"only {observed} of the {len(series)} steps have a value; too little to forecast from")
    raw = series.to_numpy(dtype=float)
    scale, scale_kind = mase_scale(raw[: plan.first], season)

    metrics, errors_by_name, skipped = {}, {}, {}
    for name in names:
        candidate = CANDIDATES[name]
        needed = candidate().min_train(horizon=horizon, season=season)
        if plan.first < needed:
            skipped[name] = f"needs {needed} steps before the first backtest origin, has {plan.first}"
            continue
        _, errors, seconds = backtest(candidate, series, plan, horizon=horizon, season=season)
        errors_by_name[name] = errors
        metrics[name] = _metrics(errors, raw[future_positions(plan.origins, horizon)], plan, scale, interval, seconds)
    if not metrics:
        raise ValueError(f"no candidate can be fitted on this history: {skipped}")

    chosen = _choose(metrics)
    model = CANDIDATES[chosen]().fit(series, horizon=horizon, season=season)
    model.calibrate(errors_by_name[chosen])
    return Selection(model=model, chosen=chosen, metrics=metrics, scale=scale_kind, skipped=skipped)


def _choose(metrics: dict[str, BacktestMetrics]) -> str:
    best = min(m.mase for m in metrics.values())
    tied = [name for name, m in metrics.items() if m.mase <= best * (1 + TIE_TOLERANCE) + 1e-12]
    return min(tied, key=lambda name: (metrics[name].fit_seconds, metrics[name].mase))


def _metrics(errors, actuals, plan, scale, interval, seconds) -> BacktestMetrics:
    ok = np.isfinite(errors)
    abs_errors = np.abs(errors[ok])
    mae = float(abs_errors.mean())
    denominators = np.abs(actuals[ok])
    mape = None if (denominators == 0).any() else float((abs_errors / denominators).mean())
    return BacktestMetrics(mase=mae / scale, mae=mae, mape=mape, coverage=_coverage(errors, plan, interval),
                           fit_seconds=seconds)


def _coverage(errors: np.ndarray, plan: BacktestPlan, interval: float) -> float:
    """Coverage of each fold's errors by the interval calibrated on the other folds (on all, with one fold)."""
    bounds = np.cumsum([0] + [len(block) for block in plan.folds])
    hits, total = 0, 0
    for k in range(len(plan.folds)):
        inside = slice(bounds[k], bounds[k + 1])
        others = np.delete(errors, np.arange(bounds[k], bounds[k + 1]), axis=0) if len(plan.folds) > 1 else errors
        quantiles = error_quantiles(others)
        lo, hi = quantile_bounds(quantiles, interval)
        fold = errors[inside]
        ok = np.isfinite(fold)
        hits += int(((fold >= lo) & (fold <= hi))[ok].sum())
        total += int(ok.sum())
    return hits / total if total else float("nan")
