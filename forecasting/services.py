"""Per-sensor forecasting: train (backtest, choose, save), forecast (store, serve), compare with what happened, and
raise forecast alerts through the anomaly alert machinery.

Forecasts are made on steps of SENSORHUB_FORECAST_STEP_SECONDS (1 h by default): each step's value is the mean of the
readings in it, labelled by the step's start (UTC). The step holding the sensor's latest reading is still filling, so
series end at the last complete step, which is a forecast's ``origin``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from anomalies.alerts import forecast_alert_evaluate, rule_for
from forecasting.ml import select_forecaster
from forecasting.models import Forecast, ForecastModel
from ingestion.models import Sensor, SensorReading
from sensorhub.ml.store import artifact_load, artifact_save

logger = logging.getLogger(__name__)


class NoModel(Exception):
    """The sensor has no trained forecaster yet."""


def step() -> timedelta:
    return timedelta(seconds=settings.SENSORHUB_FORECAST_STEP_SECONDS)


def season() -> int:
    return 86400 // settings.SENSORHUB_FORECAST_STEP_SECONDS


def _floor(at: datetime) -> datetime:
    seconds = settings.SENSORHUB_FORECAST_STEP_SECONDS
    return datetime.fromtimestamp(at.timestamp() // seconds * seconds, tz=at.tzinfo)


def sensor_series(*, sensor: Sensor, start: datetime, end: datetime) -> pd.Series:
    """Step means of the sensor's readings in [start, end), every step present (NaN where nothing was read)."""
    seconds = settings.SENSORHUB_FORECAST_STEP_SECONDS
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_timestamp(floor(extract(epoch FROM time) / %s) * %s) AS bucket, avg(value) "
            "FROM ingestion_sensorreading WHERE sensor_id = %s AND time >= %s AND time < %s GROUP BY 1 ORDER BY 1",
            [seconds, seconds, sensor.pk, start, end])
        rows = cursor.fetchall()
    index = pd.date_range(start, end, freq=f"{seconds}s", inclusive="left", tz="UTC")
    series = pd.Series(np.nan, index=index, dtype=float)
    if rows:
        known = pd.Series([value for _, value in rows], index=pd.DatetimeIndex([at for at, _ in rows]).tz_convert("UTC"))
        series.loc[known.index.intersection(index)] = known
    return series


def latest_window(*, sensor: Sensor, days: int) -> pd.Series | None:
    """The last ``days`` of complete steps up to the sensor's latest reading, or None when it has no readings."""
    latest = (SensorReading.objects.filter(sensor=sensor).order_by("-time").values_list("time", flat=True).first())
    if latest is None:
        return None
    end = _floor(latest)  # the step holding the latest reading is still filling
    return sensor_series(sensor=sensor, start=end - timedelta(days=days), end=end)


def forecaster_history(*, sensor: Sensor) -> tuple[int, int]:
    """(steps with readings in the training window, steps a first forecaster needs): what /predict tells a caller
    whose sensor has no forecaster yet."""
    series = latest_window(sensor=sensor, days=settings.SENSORHUB_FORECAST_TRAIN_DAYS)
    return (0 if series is None else int(series.notna().sum())), 2 * season()


def _series_hash(series: pd.Series) -> str:
    digest = hashlib.sha256(series.index.asi8.tobytes())
    digest.update(np.nan_to_num(series.to_numpy(dtype=float), nan=-1e300).tobytes())
    return digest.hexdigest()


def forecast_model_train(*, sensor: Sensor) -> ForecastModel | None:
    """Backtest the candidates on the sensor's history, keep the best by MASE, store it and its first forecast.

    Returns None while the history is too short (the reason is logged); returns the current model unchanged when
    the training series is exactly the one it was trained on."""
    series = latest_window(sensor=sensor, days=settings.SENSORHUB_FORECAST_TRAIN_DAYS)
    if series is None:
        return None
    series = series.loc[series.first_valid_index():] if series.notna().any() else series.iloc[:0]
    if series.notna().sum() < 2 * season():
        logger.info("forecaster warming up", extra={"sensor": sensor.slug, "steps": int(series.notna().sum())})
        return None
    data_hash = _series_hash(series)
    latest = ForecastModel.objects.filter(sensor=sensor).order_by("-version").first()
    if latest is not None and latest.data_hash == data_hash:
        return latest
    params = {"step_seconds": settings.SENSORHUB_FORECAST_STEP_SECONDS, "season": season(),
              "horizon": settings.SENSORHUB_FORECAST_HORIZON, "interval": settings.SENSORHUB_FORECAST_INTERVAL}
    started = timezone.now()
    try:
        selection = select_forecaster(series, horizon=params["horizon"], season=params["season"],
                                      interval=params["interval"])
    except ValueError as err:
        logger.info("forecaster not trained", extra={"sensor": sensor.slug, "reason": str(err)})
        return None
    fit_seconds = (timezone.now() - started).total_seconds()
    chosen = selection.metrics[selection.chosen]
    with transaction.atomic():
        latest = ForecastModel.objects.select_for_update().filter(sensor=sensor).order_by("-version").first()
        version = (latest.version + 1) if latest else 1
        path, sha = artifact_save(selection.model, name=f"forecast/{sensor.slug}/v{version}")
        model = ForecastModel.objects.create(
            sensor=sensor, version=version, name=selection.chosen, artifact=path, sha256=sha, params=params,
            backtest={name: _metrics_dict(m) for name, m in selection.metrics.items()},
            mase=_finite(chosen.mase), mae=_finite(chosen.mae), coverage=chosen.coverage, fit_seconds=fit_seconds,
            data_start=series.index[0], data_end=series.index[-1] + step(), points=int(series.notna().sum()),
            data_hash=data_hash)
    logger.info("trained forecaster", extra={"sensor": sensor.slug, "version": version, "model": selection.chosen,
                                             "mase": chosen.mase, "seconds": round(fit_seconds, 2)})
    forecast_refresh(sensor=sensor)
    return model


def _finite(value) -> float:
    return float(value) if value is not None and math.isfinite(value) else float("nan")


def _metrics_dict(metrics) -> dict:
    return {name: _json_number(getattr(metrics, name), digits=6)
            for name in ("mase", "mae", "mape", "coverage", "fit_seconds")}


def forecast_compute(*, model: ForecastModel, history: pd.Series, horizon: int, interval: float) -> list[dict]:
    forecaster = artifact_load(model.artifact, model.sha256)
    frame = forecaster.forecast(history, horizon=horizon, interval=interval)
    return [{"time": at.isoformat().replace("+00:00", "Z"), "yhat": round(float(row.yhat), 6),
             "lower": round(float(row.lower), 6), "upper": round(float(row.upper), 6)}
            for at, row in zip(frame.index, frame.itertuples())]


def forecast_refresh(*, sensor: Sensor) -> Forecast | None:
    """Forecast the maximum horizon from the latest complete step with the current model and store it (once per
    origin and model); then check the forecast against the sensor's limits."""
    model = ForecastModel.objects.filter(sensor=sensor).order_by("-version").first()
    if model is None:
        return None
    history = latest_window(sensor=sensor, days=settings.SENSORHUB_FORECAST_HISTORY_DAYS)
    if history is None or not history.notna().any():
        return None
    origin = history.index[-1]
    existing = Forecast.objects.filter(sensor=sensor, model=model, origin=origin).first()
    if existing is not None:
        return existing
    points = forecast_compute(model=model, history=history, horizon=settings.SENSORHUB_FORECAST_MAX_HORIZON,
                              interval=settings.SENSORHUB_FORECAST_INTERVAL)
    forecast, _ = Forecast.objects.get_or_create(
        sensor=sensor, model=model, origin=origin,
        defaults={"step_seconds": settings.SENSORHUB_FORECAST_STEP_SECONDS,
                  "interval": settings.SENSORHUB_FORECAST_INTERVAL, "points": points})
    forecast_alerts_check(sensor=sensor, forecast=forecast)
    return forecast


# --- forecast alerts -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Crossing:
    time: datetime
    value: float
    limit: float
    direction: str  # "above" or "below"
    probability: float
    explanation: str


def forecast_crossing(*, sensor: Sensor, forecast: Forecast, within: timedelta, above: float | None,
                      below: float | None, now: datetime | None = None) -> Crossing | None:
    """The first forecast step within ``within`` of now whose forecast passes a limit (the lower of the valid max
    and the rule's ``above``; the higher of valid min and ``below``), or None."""
    now = now or timezone.now()
    highs = [v for v in (sensor.valid_max, above) if v is not None]
    lows = [v for v in (sensor.valid_min, below) if v is not None]
    high, low = (min(highs) if highs else None), (max(lows) if lows else None)
    if high is None and low is None:
        return None
    z = NormalDist().inv_cdf((1 + forecast.interval) / 2)  # the interval's half-width in standard deviations
    for point in forecast.points:
        at = datetime.fromisoformat(point["time"].replace("Z", "+00:00"))
        if at + step() <= now:
            continue  # already in the past
        if at > now + within:
            break
        yhat, sigma = point["yhat"], max((point["upper"] - point["lower"]) / (2 * z), 1e-12)
        for limit, direction in ((high, "above"), (low, "below")):
            if limit is None:
                continue
            margin = (yhat - limit) if direction == "above" else (limit - yhat)
            if margin > 0:
                probability = NormalDist().cdf(margin / sigma)
                hours = max((at - now).total_seconds() / 3600, 0)
                verb = "exceed" if direction == "above" else "fall below"
                unit = f" {sensor.unit}" if sensor.unit else ""
                explanation = (
                    f"forecast: will {verb} {limit:g}{unit} in about {_about(hours)} "
                    f"(forecast {yhat:.4g}{unit} for {at:%Y-%m-%d %H:%M} UTC, {forecast.interval:.0%} interval "
                    f"{point['lower']:.4g} to {point['upper']:.4g}; {forecast.model.name} v{forecast.model.version})")
                return Crossing(at, yhat, limit, direction, round(probability, 4), explanation)
    return None


def _about(hours: float) -> str:
    if hours < 1:
        return "less than an hour"
    if hours < 48:
        return f"{round(hours)} h"
    return f"{round(hours / 24)} days"


def forecast_alerts_check(*, sensor: Sensor, forecast: Forecast, now: datetime | None = None):
    rule = rule_for(sensor)
    crossing = forecast_crossing(sensor=sensor, forecast=forecast, within=rule.forecast_within,
                                 above=rule.forecast_above, below=rule.forecast_below, now=now)
    return forecast_alert_evaluate(sensor=sensor, rule=rule, crossing=crossing, forecast_model=forecast.model, now=now)


# --- realised accuracy -----------------------------------------------------------------------------------------------

def forecasts_evaluate(*, sensor: Sensor) -> int:
    """Compare each stored forecast's first SENSORHUB_FORECAST_HORIZON steps with the step means that arrived,
    once all of them have passed; then refresh the model versions' realised accuracy. Returns forecasts evaluated."""
    latest = SensorReading.objects.filter(sensor=sensor).order_by("-time").values_list("time", flat=True).first()
    if latest is None:
        return 0
    complete_until = _floor(latest)  # steps before this are complete
    horizon = settings.SENSORHUB_FORECAST_HORIZON
    due = list(Forecast.objects.filter(sensor=sensor, evaluated_at__isnull=True,
                                       origin__lte=complete_until - step() * (horizon + 1)).order_by("origin"))
    if not due:
        return 0
    actual = sensor_series(sensor=sensor, start=due[0].origin + step(),
                           end=due[-1].origin + step() * (horizon + 1))
    now = timezone.now()
    totals: dict[int, list[float]] = {}  # model id -> [forecasts, points, abs error, ape, ape points, covered]
    for forecast in due:
        errors, apes, covered = [], [], 0
        for point in forecast.points[:horizon]:
            value = actual.get(pd.Timestamp(point["time"]))
            if value is None or not math.isfinite(value):
                continue
            errors.append(abs(value - point["yhat"]))
            if abs(value) > 1e-9:
                apes.append(abs(value - point["yhat"]) / abs(value))
            covered += point["lower"] <= value <= point["upper"]
        n = len(errors)
        forecast.evaluated_at = now
        forecast.realised_points = n
        forecast.realised_mae = float(np.mean(errors)) if n else None
        forecast.realised_mape = float(np.mean(apes)) if apes else None
        forecast.realised_coverage = covered / n if n else None
        if n:
            total = totals.setdefault(forecast.model_id, [0, 0, 0.0, 0.0, 0, 0])
            for i, amount in enumerate((1, n, sum(errors), sum(apes), len(apes), covered)):
                total[i] += amount
    with transaction.atomic():
        Forecast.objects.bulk_update(due, ["evaluated_at", "realised_points", "realised_mae", "realised_mape",
                                           "realised_coverage"])
        for model_id, total in totals.items():
            _model_accuracy_add(model_id, *total)
    return len(due)


def _model_accuracy_add(model_id: int, forecasts: int, points: int, abs_error: float, ape: float, ape_points: int,
                        covered: int) -> None:
    """Fold newly evaluated forecasts into the version's running accuracy (kept after the forecasts expire)."""
    model = ForecastModel.objects.select_for_update().get(pk=model_id)
    before = model.realised_points
    after = before + points
    model.realised_mae = ((model.realised_mae or 0.0) * before + abs_error) / after
    model.realised_coverage = ((model.realised_coverage or 0.0) * before + covered) / after
    if ape_points:  # MAPE is weighted by points too (undefined where the actual value is zero)
        model.realised_mape = ((model.realised_mape or 0.0) * before + ape / ape_points * points) / after
    model.realised_forecasts += forecasts
    model.realised_points = after
    model.save(update_fields=["realised_forecasts", "realised_points", "realised_mae", "realised_mape",
                              "realised_coverage"])


def forecasts_prune(*, keep_days: int | None = None) -> int:
    """Delete forecasts older than keep_days (their model version keeps its realised accuracy)."""
    keep_days = keep_days or settings.SENSORHUB_FORECAST_KEEP_DAYS
    deleted, _ = Forecast.objects.filter(created_at__lt=timezone.now() - timedelta(days=keep_days)).delete()
    return deleted


# --- serving ---------------------------------------------------------------------------------------------------------

def prediction(*, sensor: Sensor, horizon: int, interval: float) -> dict:
    """What /predict answers: the stored forecast when it is fresh — made by the current model from the latest complete
    step, so recomputing would give the same — and fits the request; otherwise one computed now."""
    # One plain query (this is /predict's hot path): the current model, the sensor's latest reading, and the stored
    # forecast that model made from the last complete step before it, if any.
    seconds = settings.SENSORHUB_FORECAST_STEP_SECONDS
    model = next(iter(ForecastModel.objects.raw(
        "SELECT m.*, r.latest, f.origin AS forecast_origin, f.interval AS forecast_interval, "
        "f.created_at AS forecast_created_at, f.points AS forecast_points "
        "FROM (SELECT * FROM forecasting_forecastmodel WHERE sensor_id = %s ORDER BY version DESC LIMIT 1) m "
        "CROSS JOIN (SELECT max(time) AS latest FROM ingestion_sensorreading WHERE sensor_id = %s) r "
        "LEFT JOIN forecasting_forecast f ON f.sensor_id = m.sensor_id AND f.model_id = m.id "
        "AND f.origin = to_timestamp(floor(extract(epoch FROM r.latest) / %s) * %s - %s)",
        [sensor.pk, sensor.pk, seconds, seconds, seconds])), None)
    if model is None or model.latest is None:
        raise NoModel(sensor.slug)
    # None when the current model has no forecast from the latest complete step (Django leaves jsonb as text).
    stored = json.loads(model.forecast_points) if model.forecast_points is not None else None
    if stored is not None and abs(model.forecast_interval - interval) < 1e-9 and len(stored) >= horizon:
        points, origin, generated_at = stored[:horizon], model.forecast_origin, model.forecast_created_at
        source = "stored"
    else:
        history = latest_window(sensor=sensor, days=settings.SENSORHUB_FORECAST_HISTORY_DAYS)
        if not history.notna().any():
            raise NoModel(sensor.slug)  # silent for the whole history window: nothing to forecast from
        points = forecast_compute(model=model, history=history, horizon=horizon, interval=interval)
        origin, generated_at, source = history.index[-1].to_pydatetime(), timezone.now(), "computed"
    return {
        "sensor": sensor.slug, "unit": sensor.unit, "step_seconds": settings.SENSORHUB_FORECAST_STEP_SECONDS,
        "horizon": horizon, "interval": interval, "origin": origin, "generated_at": generated_at, "source": source,
        "model": {"name": model.name, "version": model.version, "trained_at": model.trained_at,
                  "backtest": {"mase": _json_number(model.mase), "mae": _json_number(model.mae),
                               "coverage": model.coverage},
                  "realised": {"forecasts": model.realised_forecasts, "points": model.realised_points,
                               "mae": model.realised_mae, "mape": model.realised_mape,
                               "coverage": model.realised_coverage}},
        "points": points,
    }


def _json_number(value, digits: int | None = None):
    """JSON has no NaN: undefined metrics are null."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else value
