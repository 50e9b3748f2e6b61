from __future__ import annotations

import hashlib
import logging
import pickle
import struct
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from anomalies.alerts import alerts_evaluate, rule_for
from anomalies.detector import Detection, Settings, StreamingDetector
from anomalies.models import AlertRule, AnomalyEvent, AnomalyModel, ScoringState
from ingestion.models import Sensor, SensorReading
from sensorhub.ml.store import artifact_load, artifact_save

logger = logging.getLogger(__name__)


class NoModel(Exception):
    """The sensor has no trained detector yet."""


def _training_window(sensor: Sensor):
    # Up to the last scored reading when live scoring runs: readings after it are still to be scored (and alerted
    # on) by the new model, not silently absorbed into its training.
    state = ScoringState.objects.filter(sensor=sensor).values_list("scored_until", flat=True).first()
    end = state or timezone.now()
    start = end - timedelta(days=settings.SENSORHUB_ANOMALY_TRAIN_DAYS)
    return list(SensorReading.objects.filter(sensor=sensor, time__gte=start, time__lte=end)
                .order_by("time").values_list("time", "value"))


def _data_hash(rows) -> str:
    digest = hashlib.sha256()
    for at, value in rows:
        digest.update(struct.pack("<dd", at.timestamp(), value))
    return digest.hexdigest()


@transaction.atomic
def anomaly_model_train(*, sensor: Sensor) -> AnomalyModel | None:
    """Train the sensor's detector on its recent history and make it the one live scoring continues from.

    Returns None while the sensor has too little history (it is "warming up"); returns the current model unchanged
    when the training window holds exactly the data it was trained on (a second run changes nothing).
    """
    return _model_train(sensor=sensor)[0]


def _model_train(*, sensor: Sensor) -> tuple[AnomalyModel | None, list]:
    """``anomaly_model_train``, also returning each training reading with its detection ([] when nothing was
    trained). Training streams through the history, so these are the causal scores live scoring would have given."""
    ScoringState.objects.select_for_update().filter(sensor=sensor).first()  # no scoring while we retrain
    rows = _training_window(sensor)
    detector_settings = Settings()
    if len(rows) <= detector_settings.warmup:
        return None, []
    data_hash = _data_hash(rows)
    latest = AnomalyModel.objects.filter(sensor=sensor).order_by("-version").first()
    if latest is not None and latest.data_hash == data_hash:
        return latest, []
    detector = StreamingDetector(detector_settings)
    detections = detector.score_many([value for _, value in rows], times=[at for at, _ in rows])
    version = (latest.version + 1) if latest else 1
    path, sha = artifact_save(detector, name=f"anomaly/{sensor.slug}/v{version}")
    model = AnomalyModel.objects.create(
        sensor=sensor, version=version, artifact=path, sha256=sha, params=detector_settings.__dict__,
        data_start=rows[0][0], data_end=rows[-1][0], readings=len(rows), data_hash=data_hash,
    )
    ScoringState.objects.update_or_create(
        sensor=sensor, defaults={"model": model, "scored_until": rows[-1][0], "state": pickle.dumps(detector)})
    logger.info("trained anomaly model", extra={"sensor": sensor.slug, "version": version, "readings": len(rows)})
    return model, list(zip(rows, detections))


def readings_score(*, sensor: Sensor) -> list[AnomalyEvent]:
    """Score the sensor's readings newer than the last scored one and record events; returns the new events.

    Runs under a row lock on the sensor's scoring state, so two workers never score the same readings.
    """
    with transaction.atomic():
        state = ScoringState.objects.select_for_update().select_related("model").filter(sensor=sensor).first()
        threshold = settings.SENSORHUB_ANOMALY_EVENT_THRESHOLD
        if state is None:
            # The first model: its training streamed through the readings that ended the warm-up, these new ones
            # among them, so their scores are recorded from that pass (otherwise they would be absorbed unscored).
            # Alerts only for events recent enough to be going on still, not for last week's.
            model, scored = _model_train(sensor=sensor)
            if model is None:
                return []  # warming up
            events = [_event(sensor, model, at, value, d) for (at, value), d in scored
                      if not d.warming_up and d.score >= threshold]
            AnomalyEvent.objects.bulk_create(events, ignore_conflicts=True)
            # From now, not from the last reading: an import of old readings alerts on nothing.
            recent = [e for e in events if e.time >= timezone.now() - rule_for(sensor).resolve_after]
            if recent:
                alerts_evaluate(sensor=sensor, events=recent)
            return events
        rows = list(SensorReading.objects.filter(sensor=sensor, time__gt=state.scored_until)
                    .order_by("time").values_list("time", "value"))
        if not rows:
            return []
        detector = pickle.loads(state.state)
        detections = detector.score_many([value for _, value in rows], times=[at for at, _ in rows])
        events = [_event(sensor, state.model, at, value, d) for (at, value), d in zip(rows, detections)
                  if not d.warming_up and d.score >= threshold]
        AnomalyEvent.objects.bulk_create(events, ignore_conflicts=True)
        alerts_evaluate(sensor=sensor, events=events)
        state.state = pickle.dumps(detector)
        state.scored_until = rows[-1][0]
        state.save(update_fields=["state", "scored_until", "updated_at"])
    return events


def _event(sensor, model, at, value, detection: Detection) -> AnomalyEvent:
    return AnomalyEvent(sensor=sensor, model=model, time=at, value=value, score=detection.score,
                        kind=detection.kind, explanation=detection.explanation(value),
                        expected_low=detection.expected_low, expected_high=detection.expected_high)


def points_score(*, sensor: Sensor, values: list[float], times: list | None = None
                 ) -> tuple[AnomalyModel, list[Detection]]:
    """Score given values against the sensor's current model without changing any state (for /detect_anomaly).

    ``times`` (optional, one per value: datetimes or epoch seconds) lets the model take gaps between the values into
    account (the time since the model's own last reading is not scored as a silence); without them the values are
    taken to follow at the usual interval."""
    # A plain query on /detect_anomaly's hot path (the ORM's compilation cost more than the query); the instance's
    # other fields load on access. ``model.alert_threshold``: the sensor's alert rule's threshold (None: no rule).
    model = next(iter(AnomalyModel.objects.raw(
        f"SELECT m.id, m.sensor_id, m.version, m.artifact, m.sha256, m.trained_at, r.threshold AS alert_threshold "
        f"FROM {AnomalyModel._meta.db_table} m LEFT JOIN {AlertRule._meta.db_table} r ON r.sensor_id = m.sensor_id "
        "WHERE m.sensor_id = %s ORDER BY m.version DESC LIMIT 1", [sensor.pk])), None)
    if model is None:
        raise NoModel(sensor.slug)
    detector = _frozen(model.artifact, model.sha256).fork()
    return model, detector.score_many(values, times=times)


@lru_cache(maxsize=256)
def _frozen(artifact: str, sha256: str) -> StreamingDetector:
    """The model's scoring copy (its forest, no refits): each request scores a fork of it (~0.1 ms)."""
    return artifact_load(artifact, sha256).scoring_copy()


def anomaly_models_retrain() -> int:
    """Retrain every active sensor whose training window changed (the data hash tells). Returns models trained."""
    trained = 0
    for sensor in Sensor.objects.filter(active=True, anomaly_models__isnull=False).distinct():
        before = AnomalyModel.objects.filter(sensor=sensor).count()
        anomaly_model_train(sensor=sensor)
        trained += AnomalyModel.objects.filter(sensor=sensor).count() - before
    return trained
