"""The candidate forecasters. Each conditions on the history it is given at forecast time, without refitting."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

from forecasting.ml.base import ForecastModel, future_positions

# Loading a stored Prophet model imports prophet, whose plot module logs an error when plotly (interactive charts
# only) is missing; prophet also logs one INFO line per seasonality it leaves out.
logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
logging.getLogger("prophet").setLevel(logging.WARNING)


class NaiveModel(ForecastModel):
    """The last value, repeated."""

    name = "naive"

    def _fit(self, values, index, raw):
        pass

    def predict_paths(self, values, index, origins, horizon):
        return np.repeat(values[np.asarray(origins) - 1][:, None], horizon, axis=1)


class SeasonalNaiveModel(ForecastModel):
    """The value one season before each target, repeating the last observed season for longer horizons."""

    name = "seasonal_naive"

    def min_train(self, *, horizon, season):
        return season + 1

    def _fit(self, values, index, raw):
        pass

    def predict_paths(self, values, index, origins, horizon):
        m = self.season
        steps = np.arange(horizon)
        # Target p + j is forecast by p + (j mod m) - m: the same phase in the last season before the origin.
        positions = np.asarray(origins)[:, None] + (steps % m)[None, :] - m
        return values[np.clip(positions, 0, None)]


class RidgeLagsModel(ForecastModel):
    """Direct multi-horizon linear model (DLinear-like) on the last L values.

    Inputs are the last L values minus the last one, targets the next ``horizon`` values minus the last one, so the
    model learns the shape of the continuation and stays correct when the level drifts beyond the training range.
    One ridge regression fits all steps at once; L grows with the training length, between 2 and 14 seasons.
    """

    name = "ridge_lags"
    alpha = 0.1  # ridge penalty per sample, relative to the series' variance

    def _lag_bounds(self, season, horizon=None):
        m = max(int(season), 1)
        return max(2 * m, 8), max(14 * m, 48)

    def min_train(self, *, horizon, season):
        low, _ = self._lag_bounds(season)
        return 2 * low + horizon + 48

    def _fit(self, values, index, raw):
        low, high = self._lag_bounds(self.season)
        n, h = len(values), self.horizon
        self.lags = int(np.clip((n - h) // 4, low, high))
        origins = np.arange(self.lags, n - h + 1)
        x = self._features(values, origins)
        y = values[future_positions(origins, h)] - values[origins - 1][:, None]
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        xc = x - x_mean
        scale = float(np.var(values)) or 1.0
        gram = xc.T @ xc + self.alpha * len(x) * scale * np.eye(x.shape[1])
        self.coef = np.linalg.solve(gram, xc.T @ (y - y_mean))
        self.intercept = y_mean - x_mean @ self.coef

    def _features(self, values, origins):
        if origins.min() < self.lags:
            pad = self.lags - int(origins.min())
            values = np.concatenate([np.full(pad, values[0]), values])
            origins = origins + pad
        window = origins[:, None] - self.lags + np.arange(self.lags)[None, :]
        return values[window] - values[origins - 1][:, None]

    def predict_paths(self, values, index, origins, horizon):
        origins = np.asarray(origins)
        if horizon <= self.horizon:
            paths = self._features(values, origins) @ self.coef + self.intercept
            return paths[:, :horizon] + values[origins - 1][:, None]
        # Longer than trained for: feed the forecast back in, one trained horizon at a time.
        out = np.empty((len(origins), horizon))
        for i, p in enumerate(origins):
            extended = values[:p]
            while len(extended) < p + horizon:
                step = self.predict_paths(extended, index, np.array([len(extended)]), self.horizon)[0]
                extended = np.concatenate([extended, step])
            out[i] = extended[p:p + horizon]
        return out


class DampedETSModel(ForecastModel):
    """Holt-Winters with additive damped trend and additive season; smoothing parameters from statsmodels.

    At forecast time the smoothing recursion runs over the last ``burn_in`` values of the history, starting from the
    fitted seasonal profile, so new readings move the level/trend without a refit."""

    name = "ets"
    max_fit_values = 2000  # statsmodels' optimiser is the slow part; the parameters settle well before this

    def min_train(self, *, horizon, season):
        return 2 * max(season, 1) + 10

    @property
    def burn_in(self):
        return max(20 * self.m, 200)

    def _fit(self, values, index, raw):
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        self.m = max(self.season, 1)
        values = values[-self.max_fit_values:]
        seasonal = "add" if self.m > 1 and len(values) >= 2 * self.m + 10 else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(values, trend="add", damped_trend=True, seasonal=seasonal,
                                       seasonal_periods=self.m if seasonal else None,
                                       initialization_method="estimated").fit()
        params = fit.params
        self.alpha_ = float(params["smoothing_level"])
        self.beta_ = float(params["smoothing_trend"])
        self.gamma_ = float(params.get("smoothing_seasonal") or 0.0) if seasonal else 0.0
        self.phi_ = float(params["damping_trend"])
        profile = np.zeros(self.m)
        if seasonal:
            # The last m seasonal states, keyed by absolute phase (position of the value in its training index).
            states = np.asarray(fit.season)[-self.m:]
            positions = np.arange(len(index) - self.m, len(index))
            profile[self._phase(index, positions)] = states
        self.profile = profile - profile.mean()

    def _phase(self, index, positions):
        # Phase from absolute time, so it does not depend on where a history happens to start.
        step = pd.Timedelta(self.freq).value
        start = index[0].value // step
        return (start + np.asarray(positions)) % self.m

    def predict_paths(self, values, index, origins, horizon):
        origins = np.asarray(origins)
        start = max(0, int(origins.min()) - self.burn_in)
        order = np.argsort(origins)
        wanted = origins[order]
        a, b, g, phi, m = self.alpha_, self.beta_, self.gamma_, self.phi_, self.m
        season = self.profile.copy()
        phases = self._phase(index, np.arange(len(values) + horizon))
        first = values[start:start + m]
        level, trend = float(np.mean(first - season[phases[start:start + len(first)]])), 0.0
        damp = np.cumsum(phi ** np.arange(1, horizon + 1))
        out = np.empty((len(origins), horizon))
        k = 0
        for t in range(start, int(wanted[-1]) + 1):
            while k < len(wanted) and wanted[k] == t:
                target_phases = phases[t:t + horizon]
                out[order[k]] = level + damp * trend + season[target_phases]
                k += 1
            if t >= len(values):
                break
            y, ph = values[t], phases[t]
            s_prev, old_level, old_trend = season[ph], level, trend
            level = a * (y - s_prev) + (1 - a) * (old_level + phi * old_trend)
            trend = b * (level - old_level) + (1 - b) * phi * old_trend
            season[ph] = g * (y - old_level - phi * old_trend) + (1 - g) * s_prev
        return out


def _quiet_prophet_logging():
    # cmdstanpy logs two INFO lines per fit; its get_logger() sets the level on its first call, so call it first.
    from cmdstanpy.utils import get_logger

    get_logger().setLevel(logging.WARNING)


class ProphetModel(ForecastModel):
    """Prophet (trend + Fourier seasonalities), fitted by MAP with its bundled Stan model (no compilation).

    Its forecast depends on the timestamps only: recent values move it only through a refit."""

    name = "prophet"

    def min_train(self, *, horizon, season):
        return max(season, 1) + 2

    def _fit(self, values, index, raw):
        _quiet_prophet_logging()
        from prophet import Prophet

        step, day = pd.Timedelta(self.freq), pd.Timedelta(days=1)
        span = index[-1] - index[0]
        period_days = self.season * step / day
        model = Prophet(
            yearly_seasonality=span >= 2 * 365 * day,
            weekly_seasonality=(step < 7 * day and span >= 14 * day) or abs(period_days - 7) < 1e-9,
            daily_seasonality=(step < day and span >= 2 * day) or abs(period_days - 1) < 1e-9,
            uncertainty_samples=0,
        )
        if self.season > 1 and min(abs(period_days - 1), abs(period_days - 7)) > 1e-9:
            model.add_seasonality("season", period=period_days, fourier_order=max(1, min(10, self.season // 2)))
        frame = pd.DataFrame({"ds": _naive_utc(index), "y": raw})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(frame)
        self.model = model
        self.origin = index[0]

    def predict_paths(self, values, index, origins, horizon):
        positions = future_positions(origins, horizon)
        low, high = int(positions.min()), int(positions.max())
        times = pd.date_range(index[0] + low * self.freq, periods=high - low + 1, freq=self.freq)
        yhat = self.model.predict(pd.DataFrame({"ds": _naive_utc(times)}))["yhat"].to_numpy()
        return yhat[positions - low]


def _naive_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
