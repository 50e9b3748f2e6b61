"""The forecaster interface shared by every candidate, and the series hygiene they all rely on.

Every model forecasts point paths from "origins": an origin ``p`` means "the first ``p`` values are known", so the
path is the forecast of ``values[p : p + horizon]``. Backtests, the ETT benchmark and ``forecast()`` all go through
the same ``predict_paths`` so that what is measured is exactly what production runs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

# Quantile levels at which backtest residuals are stored per step; intervals interpolate between them.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 201)


def regular_series(series: pd.Series, freq=None) -> pd.Series:
    """The series on a regular grid (missing steps become NaN), float, sorted, duplicates averaged."""
    if not isinstance(series.index, pd.DatetimeIndex):
        raise ValueError("the series needs a DatetimeIndex")
    freq = freq or series.index.freq or _guess_freq(series.index)
    s = series.astype(float)
    if not s.index.is_monotonic_increasing or s.index.has_duplicates:
        s = s.groupby(level=0).mean().sort_index()
    if len(s) == 0:
        return s
    grid = pd.date_range(s.index[0], s.index[-1], freq=freq)
    return s.reindex(grid) if len(grid) != len(s) or not grid.equals(s.index) else s.asfreq(freq)


def _guess_freq(index: pd.DatetimeIndex):
    steps = index.to_series().diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        raise ValueError("the series index needs a regular step (set index.freq, e.g. 'h')")
    return pd.tseries.frequencies.to_offset(steps.min())


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """Linear interpolation inside gaps, last value carried forward after the end, first value carried backward."""
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values)
    if ok.all():
        return values
    if not ok.any():
        raise ValueError("the series has no observed values")
    positions = np.arange(len(values))
    return np.interp(positions, positions[ok], values[ok])


class ForecastModel:
    """A fitted forecaster. Subclasses implement ``_fit`` and ``predict_paths``; intervals come from calibration.

    ``calibration`` holds, per forecast step, quantiles of the backtest errors (actual - forecast); without it (a
    model fitted outside ``select_forecaster``) the interval is degenerate (lower = yhat = upper).
    """

    name = "base"

    def __init__(self):
        self.freq = None
        self.season = 1
        self.horizon = 1
        self.calibration: np.ndarray | None = None  # shape (len(QUANTILE_LEVELS), steps)

    def min_train(self, *, horizon: int, season: int) -> int:
        """The fewest training values this model can be fitted on."""
        return 2

    def fit(self, series: pd.Series, *, horizon: int, season: int) -> "ForecastModel":
        series = regular_series(series)
        self.freq = series.index.freq
        self.season = int(season)
        self.horizon = int(horizon)
        raw = series.to_numpy(dtype=float)
        self._fit(fill_gaps(raw), series.index, raw)
        return self

    def _fit(self, values: np.ndarray, index: pd.DatetimeIndex, raw: np.ndarray) -> None:
        """Fit on gap-filled ``values``; ``raw`` has NaN where nothing was observed."""
        raise NotImplementedError

    def predict_paths(self, values: np.ndarray, index: pd.DatetimeIndex, origins: np.ndarray,
                      horizon: int) -> np.ndarray:
        """Point forecasts, shape (len(origins), horizon), of values[p:p+horizon] from values[:p] for each origin p.

        ``values`` are gap-filled; ``index`` is their regular DatetimeIndex (models may need timestamps beyond its
        end, computed from ``self.freq``)."""
        raise NotImplementedError

    def forecast(self, history: pd.Series, horizon: int = 24, interval: float = 0.9) -> pd.DataFrame:
        """Forecast the ``horizon`` steps after ``history``'s last timestamp, with the central ``interval``."""
        if not 0 < interval < 1:
            raise ValueError("interval must be between 0 and 1")
        if horizon < 1:
            raise ValueError("horizon must be at least 1")
        history = regular_series(history, self.freq)
        if not np.isfinite(history.to_numpy(dtype=float)).any():
            raise ValueError("the history has no observed values")
        values = fill_gaps(history.to_numpy())
        yhat = self.predict_paths(values, history.index, np.array([len(values)]), horizon)[0]
        lower, upper = self.interval_offsets(horizon, interval)
        index = pd.date_range(history.index[-1] + self.freq, periods=horizon, freq=self.freq)
        return pd.DataFrame({"yhat": yhat, "lower": yhat + lower, "upper": yhat + upper}, index=index)

    def interval_offsets(self, horizon: int, interval: float) -> tuple[np.ndarray, np.ndarray]:
        """Offsets to add to yhat for the interval's bounds, per step (clipped so that lower <= yhat <= upper)."""
        if self.calibration is None:
            return np.zeros(horizon), np.zeros(horizon)
        lo, hi = quantile_bounds(self.calibration, interval)
        steps = len(lo)
        if horizon > steps:
            # Past the calibrated steps, widen the last step's interval like a random walk's (sqrt of the step).
            grow = np.sqrt(np.arange(steps + 1, horizon + 1) / steps)
            lo = np.concatenate([lo, lo[-1] * grow])
            hi = np.concatenate([hi, hi[-1] * grow])
        return np.minimum(lo[:horizon], 0.0), np.maximum(hi[:horizon], 0.0)

    def calibrate(self, errors: np.ndarray) -> None:
        """Store per-step quantiles of backtest errors, shape (origins, steps), NaN where the actual was missing."""
        self.calibration = error_quantiles(errors)


def error_quantiles(errors: np.ndarray) -> np.ndarray:
    """Per-step quantiles of errors (origins x steps, NaN ignored); a step with no errors borrows its neighbour's."""
    steps = errors.shape[1]
    out = np.zeros((len(QUANTILE_LEVELS), steps))
    for j in range(steps):
        column = errors[:, j][np.isfinite(errors[:, j])]
        out[:, j] = np.quantile(column, QUANTILE_LEVELS) if len(column) else np.nan
    if np.isnan(out).any():
        frame = pd.DataFrame(out).T.ffill().bfill().fillna(0.0)
        out = frame.to_numpy().T
    return out


def quantile_bounds(quantiles: np.ndarray, interval: float) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the error quantiles at the two ends of the central ``interval``."""
    def at(level):
        return np.array([np.interp(level, QUANTILE_LEVELS, quantiles[:, j]) for j in range(quantiles.shape[1])])

    return at((1 - interval) / 2), at((1 + interval) / 2)


def future_positions(origins: np.ndarray, horizon: int) -> np.ndarray:
    """Positions (origins x steps) of the forecast targets: origin p forecasts positions p .. p + horizon - 1."""
    return np.asarray(origins)[:, None] + np.arange(horizon)[None, :]
