"""The ETTh1 protocol (shared/benchmarks/README.md) applied to the production forecaster.

Rows are split train [0, 8640), validation [8640, 11520), test [11520, 14400); OT is standardised with the train
rows' mean and standard deviation; every test origin whose whole horizon fits inside the test rows is scored, using
only the rows before it; squared and absolute errors are averaged over origins and steps on the standardised scale.

Here an origin ``p`` is the number of known rows (the last observed row is ``p - 1``), as in forecasting.ml.base.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.ml.base import fill_gaps, future_positions
from forecasting.ml.models import NaiveModel, ProphetModel, SeasonalNaiveModel
from forecasting.ml.selection import select_forecaster


@dataclass(frozen=True)
class Split:
    train_end: int
    val_end: int
    test_end: int

    def __post_init__(self):
        if not 0 < self.train_end < self.val_end < self.test_end:
            raise ValueError("the split needs 0 < train end < validation end < test end")


PROTOCOL = Split(train_end=8640, val_end=11520, test_end=14400)


@dataclass(frozen=True)
class Score:
    mse: float
    mae: float


@dataclass
class HorizonResult:
    horizon: int
    origins: np.ndarray  # p: number of known rows; the last observed row is p - 1
    chosen: str  # the production selection's choice
    backtest_mase: dict[str, float]  # what the selection saw on the rows before the test split
    scores: dict[str, Score]  # "production", "prophet", "naive", "seasonal_naive"
    production_paths: np.ndarray  # standardised, origins x horizon
    seconds: float


def load_ett(path: Path, column: str = "OT") -> pd.Series:
    """The target column on a regular UTC index, one step per row (row positions are the protocol's positions)."""
    if not Path(path).is_file():
        raise ValueError(f"no such file: {path}")
    frame = pd.read_csv(path)
    missing = [name for name in ("date", column) if name not in frame.columns]
    if missing:
        names = " or ".join(repr(name) for name in missing)
        raise ValueError(f"{path} has no {names} column (columns: {list(frame.columns)})")
    dates = pd.to_datetime(frame["date"], utc=True)
    step = dates.diff().median() if len(dates) > 1 else pd.Timedelta(hours=1)
    if not step or pd.isna(step) or step <= pd.Timedelta(0):
        raise ValueError(f"{path}: the dates do not increase")
    # Rows are consecutive steps by definition of the protocol, whatever the odd irregular timestamp says.
    index = pd.date_range(dates.iloc[0], periods=len(frame), freq=pd.tseries.frequencies.to_offset(step))
    return pd.Series(pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float), index=index, name=column)


def test_origins(split: Split, horizon: int) -> np.ndarray:
    return np.arange(split.val_end, split.test_end - horizon + 1)


def score(paths: np.ndarray, actual: np.ndarray, origins: np.ndarray) -> Score:
    errors = paths - actual[future_positions(origins, paths.shape[1])]
    return Score(mse=float(np.mean(errors ** 2)), mae=float(np.mean(np.abs(errors))))


def run(series: pd.Series, *, split: Split = PROTOCOL, horizons=(24, 48, 168), season: int = 24,
        refit_every: int = 168, log=lambda message: None) -> list[HorizonResult]:
    """Score the production selection, Prophet alone and the two naive baselines at each horizon.

    Production: ``select_forecaster`` on the rows before the test split (its own backtest chooses), fitted once; it
    then forecasts every test origin from the rows before that origin, without refitting. Prophet alone is refitted
    on all rows before the origin every ``refit_every`` origins, since it cannot condition on recent values."""
    if len(series) < split.test_end:
        raise ValueError(f"the file has {len(series)} rows; the split needs {split.test_end} "
                         f"(train {split.train_end}, validation up to {split.val_end}, test up to {split.test_end})")
    if max(horizons) > split.test_end - split.val_end:
        raise ValueError(f"horizon {max(horizons)} does not fit in the {split.test_end - split.val_end} test rows")
    series = series.iloc[: split.test_end]
    train = series.to_numpy()[: split.train_end]
    mean, std = np.nanmean(train), np.nanstd(train)
    if not np.isfinite(std) or std == 0:
        raise ValueError("the train rows are constant or empty: cannot standardise")
    values = fill_gaps(series.to_numpy())
    actual = (series.to_numpy() - mean) / std

    def standardise(paths):
        return (paths - mean) / std

    prophet_paths = _prophet_paths(series, split, max(horizons), season, refit_every, log)
    results = []
    for horizon in horizons:
        started = time.perf_counter()
        origins = test_origins(split, horizon)
        selection = select_forecaster(series.iloc[: split.val_end], horizon=horizon, season=season)
        log(f"h={horizon}: selection chose {selection.chosen} in {time.perf_counter() - started:.1f} s")
        production = standardise(selection.model.predict_paths(values, series.index, origins, horizon))
        naive, seasonal = NaiveModel(), SeasonalNaiveModel()
        seasonal.season = season
        scores = {
            "production": score(production, actual, origins),
            "prophet": score(standardise(prophet_paths[origins - split.val_end, :horizon]), actual, origins),
            "naive": score(standardise(naive.predict_paths(values, series.index, origins, horizon)), actual, origins),
            "seasonal_naive": score(
                standardise(seasonal.predict_paths(values, series.index, origins, horizon)), actual, origins),
        }
        results.append(HorizonResult(horizon=horizon, origins=origins, chosen=selection.chosen, scores=scores,
                                     backtest_mase={name: m.mase for name, m in selection.metrics.items()},
                                     production_paths=production, seconds=time.perf_counter() - started))
    return results


def _prophet_paths(series, split, horizon, season, refit_every, log):
    """Prophet's forecasts from every test origin (origins from the validation end), refitted every few origins."""
    origins = np.arange(split.val_end, split.test_end)
    paths = np.full((len(origins), horizon), np.nan)
    started = time.perf_counter()
    values = fill_gaps(series.to_numpy())
    for first in range(0, len(origins), refit_every):
        block = origins[first: first + refit_every]
        model = ProphetModel().fit(series.iloc[: int(block[0])], horizon=horizon, season=season)
        paths[first: first + len(block)] = model.predict_paths(values, series.index, block, horizon)
    log(f"prophet: {int(np.ceil(len(origins) / refit_every))} fits in {time.perf_counter() - started:.1f} s")
    return paths
