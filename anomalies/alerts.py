"""Alert rules turn anomaly events into alerts (with hysteresis, minimum duration and cooldown) and alerts into
notifications, so a noisy sensor raises one alert, not sixty."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from anomalies.choices import AlertSource, AlertStatus, ChannelKind, DeliveryStatus
from anomalies.models import Alert, AlertRule, AnomalyEvent, Delivery, NotificationChannel
from ingestion.models import SensorReading

logger = logging.getLogger(__name__)
FALSE_POSITIVE_MARGIN = 0.05


def rule_for(sensor) -> AlertRule:
    """The sensor's rule, or an unsaved one with the defaults."""
    return AlertRule.objects.filter(sensor=sensor).first() or AlertRule(sensor=sensor)


def alerts_evaluate(*, sensor, events: list[AnomalyEvent], now: datetime | None = None) -> Alert | None:
    """Run after each scoring of the sensor, inside its transaction (which holds the sensor's scoring lock)."""
    now = now or timezone.now()
    rule = rule_for(sensor)
    if not rule.enabled:
        return None
    active = Alert.objects.select_for_update().filter(sensor=sensor, source=AlertSource.ANOMALY).exclude(
        status=AlertStatus.RESOLVED).first()
    if active is not None:
        return _extend_or_resolve(active, rule, events, now)
    if rule.min_duration:
        strong, last_seen = _persisting(sensor, rule)
    else:
        strong = [e for e in events if e.score >= rule.threshold]
        last_seen = strong[-1].time if strong else None
    if not strong or _cooling_down(sensor, rule, now, AlertSource.ANOMALY):
        return None
    trigger = strong[0]
    alert = Alert.objects.create(
        sensor=sensor, kind=trigger.kind, first_event_at=trigger.time, last_event_at=last_seen,
        trigger_value=trigger.value, trigger_score=trigger.score, peak_score=max(e.score for e in strong),
        explanation=trigger.explanation, model=trigger.model,
    )
    transaction.on_commit(lambda: notifications_send(alert_id=alert.pk))
    logger.info("alert opened", extra={"sensor": sensor.slug, "alert": alert.pk, "kind": alert.kind})
    return alert


def _continues(event: AnomalyEvent, value: float) -> bool:
    """A reading that carries on the condition an event reported: still the stuck value, or still outside the usual
    range the event was judged against. The detector raises one event per change and damps its repeats, so how long
    a fault lasts shows in the readings after its event, not in more events."""
    if event.kind == "stuck":
        return value == event.value
    return not event.expected_low <= value <= event.expected_high


def _extend_or_resolve(alert: Alert, rule: AlertRule, events, now) -> Alert:
    """An open alert is extended by events scoring ``clear_below`` or more and by readings that carry on its
    triggering event's condition; it resolves itself after ``resolve_after`` without either."""
    relevant = [e for e in events if e.score >= rule.clear_below]
    seen = [e.time for e in relevant]
    trigger = AnomalyEvent.objects.filter(sensor=alert.sensor_id, time=alert.first_event_at).first()
    if trigger is not None:
        seen += [at for at, value in SensorReading.objects.filter(sensor=alert.sensor_id, time__gt=alert.last_event_at)
                 .values_list("time", "value") if _continues(trigger, value)]
    if seen:
        alert.last_event_at = max([alert.last_event_at, *seen])
        alert.peak_score = max([alert.peak_score, *(e.score for e in relevant)])
        alert.save(update_fields=["last_event_at", "peak_score"])
    elif now - alert.last_event_at >= rule.resolve_after:
        alert.status, alert.resolved_at = AlertStatus.RESOLVED, now
        alert.save(update_fields=["status", "resolved_at"])
        logger.info("alert resolved itself", extra={"alert": alert.pk})
    return alert


def _cooling_down(sensor, rule: AlertRule, now, source: str) -> bool:
    last = Alert.objects.filter(sensor=sensor, source=source, status=AlertStatus.RESOLVED).aggregate(
        at=Max("resolved_at"))["at"]
    return last is not None and now - last < rule.cooldown


def _persisting(sensor, rule: AlertRule) -> tuple[list[AnomalyEvent], datetime | None]:
    """With a minimum duration: the strong events (threshold or more) from the first one whose condition lasted
    ``min_duration`` and still goes on, with when it was last seen; ([], None) while none has.

    The condition lasted when at least half the readings of the ``min_duration`` after the event carry it on
    (``_continues``) or are events of their own (``clear_below`` or more); it still goes on when a reading of the
    last ``resolve_after`` does. A spike that is over a reading later never alerts; a fault that began during the
    cooldown alerts once the cooldown is over, if it still goes on."""
    latest = SensorReading.objects.filter(sensor=sensor).order_by("-time").values_list("time", flat=True).first()
    if latest is None:
        return [], None
    covered = Alert.objects.filter(sensor=sensor, source=AlertSource.ANOMALY).aggregate(at=Max("last_event_at"))["at"]
    reach = latest - rule.min_duration - max(rule.resolve_after, rule.cooldown)
    candidates = AnomalyEvent.objects.filter(sensor=sensor, score__gte=rule.threshold, time__gte=reach,
                                             time__lte=latest - rule.min_duration)
    if covered is not None:
        candidates = candidates.filter(time__gt=covered)
    for event in candidates.order_by("time"):
        readings = list(SensorReading.objects.filter(sensor=sensor, time__gt=event.time).order_by("time")
                        .values_list("time", "value"))
        end = event.time + rule.min_duration
        flagged = set(AnomalyEvent.objects.filter(sensor=sensor, time__gt=event.time, score__gte=rule.clear_below)
                      .values_list("time", flat=True))
        carried = [at for at, value in readings if at in flagged or _continues(event, value)]
        window = [at for at, _ in readings if at <= end]
        lasted = window and 2 * sum(1 for at in carried if at <= end) >= len(window)
        if lasted and carried[-1] >= latest - rule.resolve_after:
            strong = list(AnomalyEvent.objects.filter(sensor=sensor, score__gte=rule.threshold, time__gte=event.time)
                          .order_by("time"))
            return strong, max(carried[-1], strong[-1].time)
    return [], None


def forecast_alert_evaluate(*, sensor, rule: AlertRule, crossing, forecast_model, now: datetime | None = None):
    """Open, extend or resolve the sensor's forecast alert after each new forecast. ``crossing`` (from
    forecasting.services.forecast_crossing) is None when the forecast stays within the limits."""
    now = now or timezone.now()
    with transaction.atomic():
        active = Alert.objects.select_for_update().filter(sensor=sensor, source=AlertSource.FORECAST).exclude(
            status=AlertStatus.RESOLVED).first()
        if crossing is None or not (rule.enabled and rule.forecast_enabled):
            # A forecast hovering at the limit would open and resolve an alert (and notify) every other refresh: it
            # resolves with the second clear forecast (1.5 steps after the last crossing: refreshes drift by
            # minutes) and not before resolve_after, or at once when the rule switches forecast alerts off.
            clear_for = max(rule.resolve_after, timedelta(seconds=1.5 * settings.SENSORHUB_FORECAST_STEP_SECONDS))
            switched_off = not (rule.enabled and rule.forecast_enabled)
            if active is not None and (switched_off or now - active.last_event_at >= clear_for):
                active.status, active.resolved_at = AlertStatus.RESOLVED, now
                active.save(update_fields=["status", "resolved_at"])
                logger.info("forecast alert resolved itself", extra={"alert": active.pk})
            return None
        if active is not None:
            active.last_event_at, active.explanation = now, crossing.explanation
            active.peak_score = max(active.peak_score, crossing.probability)
            active.save(update_fields=["last_event_at", "explanation", "peak_score"])
            return active
        if _cooling_down(sensor, rule, now, AlertSource.FORECAST):
            return None
        alert = Alert.objects.create(
            sensor=sensor, source=AlertSource.FORECAST, kind="forecast", first_event_at=now, last_event_at=now,
            trigger_value=crossing.value, trigger_score=crossing.probability, peak_score=crossing.probability,
            explanation=crossing.explanation, forecast_model=forecast_model)
        transaction.on_commit(lambda: notifications_send(alert_id=alert.pk))
    logger.info("forecast alert opened", extra={"sensor": sensor.slug, "alert": alert.pk})
    return alert


def alert_acknowledge(*, alert: Alert, user) -> bool:
    return bool(Alert.objects.filter(pk=alert.pk, status=AlertStatus.OPEN).update(
        status=AlertStatus.ACKNOWLEDGED, acknowledged_at=timezone.now(), acknowledged_by=user))


def alert_resolve(*, alert: Alert, user) -> bool:
    return bool(Alert.objects.filter(pk=alert.pk).exclude(status=AlertStatus.RESOLVED).update(
        status=AlertStatus.RESOLVED, resolved_at=timezone.now(), resolved_by=user))


def alert_mark_false_positive(*, alert: Alert, user) -> AlertRule:
    """Resolve the alert as a false positive and raise the sensor's alert threshold above its peak score, so the
    same kind of reading does not alert again. Returns the updated rule."""
    with transaction.atomic():
        Alert.objects.filter(pk=alert.pk).update(false_positive=True)
        alert_resolve(alert=alert, user=user)
        rule = rule_for(alert.sensor)
        if alert.source == AlertSource.FORECAST:
            return rule  # recorded; the anomaly threshold has nothing to do with a forecast's crossing
        rule.threshold = min(0.99, max(rule.threshold, alert.peak_score + FALSE_POSITIVE_MARGIN))
        rule.save()
    return rule


# --- notifications -------------------------------------------------------------------------------------------------

def notifications_send(*, alert_id: int) -> int:
    """Create one delivery per matching active channel and enqueue it. Returns the number enqueued."""
    alert = Alert.objects.select_related("sensor").get(pk=alert_id)
    channels = NotificationChannel.objects.filter(active=True).filter(
        Q(sites=None) | Q(sites=alert.sensor.site_id)).distinct()
    enqueued = 0
    for channel in channels:
        delivery, created = Delivery.objects.get_or_create(alert=alert, channel=channel)
        if created:
            current_app.send_task("anomalies.deliver", args=[delivery.pk])
            enqueued += 1
    return enqueued


def alert_payload(alert: Alert) -> dict:
    return {
        "alert": alert.pk, "status": alert.status, "sensor": alert.sensor.slug, "sensor_name": alert.sensor.name,
        "site": alert.sensor.site.slug, "kind": alert.kind, "opened_at": alert.opened_at.isoformat(),
        "trigger": {"time": alert.first_event_at.isoformat(), "value": alert.trigger_value,
                    "score": alert.trigger_score},
        "source": alert.source, "explanation": alert.explanation, "model_version": alert_model_version(alert),
    }


def alert_model_version(alert: Alert) -> int | None:
    model = alert.forecast_model if alert.source == AlertSource.FORECAST else alert.model
    return model.version if model else None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class TransientDeliveryError(Exception):
    """Worth retrying: the receiver was unreachable or answered 5xx."""


def delivery_attempt(*, delivery: Delivery) -> None:
    """One attempt; records the outcome. Raises TransientDeliveryError when a retry may succeed."""
    import urllib.error
    import urllib.request

    Delivery.objects.filter(pk=delivery.pk).update(attempts=delivery.attempts + 1)
    alert, channel = delivery.alert, delivery.channel
    payload = alert_payload(alert)
    try:
        if channel.kind == ChannelKind.EMAIL:
            send_mail(subject=f"[Sensor Hub] {alert.get_kind_display()} on {alert.sensor.name}",
                      message=f"{alert.explanation}\n\n{json.dumps(payload, indent=2)}",
                      from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[channel.target])
            status = None
        else:
            body = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json", "X-SensorHub-Event": "alert.opened"}
            if channel.secret:
                headers["X-SensorHub-Signature"] = sign(channel.secret, body)
            request = urllib.request.Request(channel.target, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=settings.SENSORHUB_WEBHOOK_TIMEOUT) as response:
                status = response.status
    except urllib.error.HTTPError as err:
        _record(delivery, DeliveryStatus.PENDING if err.code >= 500 else DeliveryStatus.FAILED,
                f"HTTP {err.code}", err.code)
        if err.code >= 500:
            raise TransientDeliveryError(f"HTTP {err.code}") from None
        return
    except OSError as err:  # connection refused, DNS, timeout, SMTP errors
        _record(delivery, DeliveryStatus.PENDING, f"{type(err).__name__}: {err}", None)
        raise TransientDeliveryError(str(err)) from None
    except ValueError as err:  # a target urllib cannot send to ("unknown url type"): retrying will not help
        _record(delivery, DeliveryStatus.FAILED, f"{type(err).__name__}: {err}; fix the channel's target", None)
        return
    _record(delivery, DeliveryStatus.SENT, "", status)


def _record(delivery: Delivery, status: str, error: str, response_status: int | None) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        status=status, last_error=error, response_status=response_status,
        sent_at=timezone.now() if status == DeliveryStatus.SENT else None)


def delivery_give_up(*, delivery_id: int) -> None:
    Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(status=DeliveryStatus.FAILED)
