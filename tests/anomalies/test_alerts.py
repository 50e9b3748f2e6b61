from datetime import timedelta

import pytest
from django.utils import timezone

from anomalies.alerts import (
    TransientDeliveryError,
    alert_mark_false_positive,
    alerts_evaluate,
    delivery_attempt,
    sign,
)
from anomalies.models import Alert, AlertRule, AnomalyEvent, Delivery, NotificationChannel
from ingestion.models import SensorReading
from tests.anomalies.fakes import SmtpSink, WebhookReceiver
from tests.factories import make_api_key, make_sensor, make_user

pytestmark = pytest.mark.django_db
T0 = timezone.now().replace(microsecond=0) - timedelta(days=1)


def events(sensor, minutes, score=0.9, kind="spike"):
    made = [AnomalyEvent(sensor=sensor, time=T0 + timedelta(minutes=m), value=50.0, score=score, kind=kind,
                         explanation=f"{kind}: observed 50, usual range 18 to 22", expected_low=18,
                         expected_high=22) for m in minutes]
    return AnomalyEvent.objects.bulk_create(made)


def evaluate(sensor, minutes, at_minute, score=0.9):
    return alerts_evaluate(sensor=sensor, events=events(sensor, minutes, score) if minutes else [],
                           now=T0 + timedelta(minutes=at_minute))


def test_a_noisy_sensor_raises_one_alert_not_sixty():
    sensor = make_sensor()
    for start in range(0, 240, 4):  # an event every 4 minutes for 4 hours, scored in 60 runs
        evaluate(sensor, [start], at_minute=start + 1)
    [alert] = Alert.objects.filter(sensor=sensor)
    assert alert.status == "open" and alert.last_event_at == T0 + timedelta(minutes=236)


def test_it_resolves_after_quiet_and_cools_down_before_a_new_alert():
    sensor = make_sensor()
    AlertRule.objects.create(sensor=sensor, resolve_after=timedelta(minutes=30), cooldown=timedelta(hours=1))
    alert = evaluate(sensor, [0], at_minute=1)
    evaluate(sensor, [10], at_minute=11, score=0.35)  # between clear_below and threshold: keeps it open
    evaluate(sensor, [], at_minute=35)
    alert.refresh_from_db()
    assert alert.status == "open"
    evaluate(sensor, [], at_minute=41)  # 31 quiet minutes since the last relevant event
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_by is None
    assert evaluate(sensor, [60], at_minute=61) is None  # within the cooldown
    assert evaluate(sensor, [105], at_minute=106).pk != alert.pk  # after it
    assert Alert.objects.filter(sensor=sensor).count() == 2


def readings(sensor, minutes, value):
    SensorReading.objects.bulk_create(SensorReading(sensor=sensor, time=T0 + timedelta(minutes=m), value=value)
                                      for m in minutes)


def test_a_spike_that_is_over_at_once_does_not_outlast_the_minimum_duration():
    sensor = make_sensor()
    AlertRule.objects.create(sensor=sensor, min_duration=timedelta(minutes=10))
    readings(sensor, [0], 50.0)
    assert evaluate(sensor, [0], at_minute=0) is None
    readings(sensor, range(1, 13), 20.0)  # back inside the usual range 18 to 22 at once
    assert evaluate(sensor, [], at_minute=12) is None
    assert not Alert.objects.filter(sensor=sensor).exists()


def test_a_lasting_fault_alerts_once_it_has_lasted_the_minimum_duration():
    sensor = make_sensor()
    AlertRule.objects.create(sensor=sensor, min_duration=timedelta(minutes=10))
    readings(sensor, range(0, 6), 50.0)  # one event (the detector does not repeat itself), the level stays up
    assert evaluate(sensor, [0], at_minute=5) is None  # 5 of 10 minutes
    readings(sensor, range(6, 12), 49.0)
    alert = evaluate(sensor, [], at_minute=11)
    assert alert is not None and alert.first_event_at == T0 and alert.trigger_value == 50.0
    readings(sensor, range(12, 20), 49.0)
    assert evaluate(sensor, [], at_minute=19) == alert  # the same alert, not a second one
    assert Alert.objects.filter(sensor=sensor).count() == 1


@pytest.mark.parametrize("min_duration", [timedelta(0), timedelta(minutes=10)])
def test_an_alert_stays_open_while_the_fault_goes_on_and_resolves_once_it_is_over(min_duration):
    sensor = make_sensor()
    AlertRule.objects.create(sensor=sensor, min_duration=min_duration, resolve_after=timedelta(minutes=30))
    readings(sensor, range(0, 12), 50.0)
    evaluate(sensor, [0], at_minute=11)
    [alert] = Alert.objects.filter(sensor=sensor)
    for minute in range(12, 90):  # an hour and more of the same fault, and no further event
        readings(sensor, [minute], 50.0)
        evaluate(sensor, [], at_minute=minute)
    alert.refresh_from_db()
    assert alert.status == "open" and alert.last_event_at == T0 + timedelta(minutes=89)
    for minute in range(90, 121):  # back to normal
        readings(sensor, [minute], 20.0)
        evaluate(sensor, [], at_minute=minute)
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_at == T0 + timedelta(minutes=119)


def test_a_fault_that_began_during_the_cooldown_alerts_when_it_ends_if_it_still_goes_on():
    sensor = make_sensor()
    AlertRule.objects.create(sensor=sensor, min_duration=timedelta(minutes=10), cooldown=timedelta(hours=1))
    Alert.objects.create(sensor=sensor, kind="spike", status="resolved", first_event_at=T0, last_event_at=T0,
                         resolved_at=T0, trigger_value=50, trigger_score=0.9, peak_score=0.9, explanation="earlier")
    readings(sensor, range(5, 31), 50.0)
    assert evaluate(sensor, [5], at_minute=30) is None  # lasted, but within the cooldown
    readings(sensor, range(31, 62), 50.0)
    alert = evaluate(sensor, [], at_minute=61)
    assert alert is not None and alert.first_event_at == T0 + timedelta(minutes=5)


def test_a_false_positive_raises_the_sensors_threshold_above_its_peak():
    sensor = make_sensor()
    alert = evaluate(sensor, [0, 1], at_minute=2, score=0.8)
    rule = alert_mark_false_positive(alert=alert, user=make_user("alice"))
    alert.refresh_from_db()
    assert alert.false_positive and alert.status == "resolved" and alert.resolved_by.username == "alice"
    assert rule.threshold == pytest.approx(0.85)
    rule.cooldown = timedelta(0)
    rule.save()
    # after the resolution (stamped with the real time): the same kind of reading no longer alerts, a stronger one does
    later = timezone.now() + timedelta(minutes=1)
    same = AnomalyEvent.objects.create(sensor=sensor, time=later, value=50.0, score=0.8, kind="spike",
                                       explanation="spike", expected_low=18, expected_high=22)
    assert alerts_evaluate(sensor=sensor, events=[same], now=later) is None
    stronger = AnomalyEvent.objects.create(sensor=sensor, time=later + timedelta(minutes=1), value=90.0, score=0.9,
                                           kind="spike", explanation="spike", expected_low=18, expected_high=22)
    assert alerts_evaluate(sensor=sensor, events=[stronger], now=later + timedelta(minutes=1)) is not None


def test_alerts_api_lists_and_acts_with_the_admin_scope(client):
    sensor = make_sensor(slug="api-alerts")
    alert = evaluate(sensor, [0], at_minute=1)
    reader, admin = make_api_key("readings:read"), make_api_key("readings:read", "admin")
    listed = client.get("/api/v1/alerts/", {"status": "open"}, headers={"X-API-Key": reader}).json()["results"]
    assert [a["id"] for a in listed] == [alert.pk] and listed[0]["explanation"].startswith("spike")
    url = f"/api/v1/alerts/{alert.pk}/acknowledge/"
    assert client.post(url, headers={"X-API-Key": reader}).status_code == 403
    assert client.post(url, headers={"X-API-Key": admin}).json()["status"] == "acknowledged"
    client.force_login(make_user("bob", superuser=True))
    resolved = client.post(f"/api/v1/alerts/{alert.pk}/resolve/").json()
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "bob"


@pytest.fixture
def receiver():
    server = WebhookReceiver(statuses=[503, 200])
    yield server
    server.close()


def delivery_for(channel):
    sensor = make_sensor()
    alert = evaluate(sensor, [0], at_minute=1)
    return Delivery.objects.select_related("alert__sensor__site", "alert__model", "channel").get(
        pk=Delivery.objects.create(alert=alert, channel=channel).pk)


def test_a_webhook_is_signed_and_retried_after_a_server_error(receiver):
    channel = NotificationChannel.objects.create(name="ops", kind="webhook", target=receiver.url, secret="s3cr3t")
    delivery = delivery_for(channel)
    with pytest.raises(TransientDeliveryError):
        delivery_attempt(delivery=delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 1, 503)
    delivery_attempt(delivery=delivery)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("sent", 2, 200)
    headers, payload, body = receiver.received[-1]
    assert headers["X-SensorHub-Signature"] == sign("s3cr3t", body)
    assert payload["kind"] == "spike" and payload["trigger"]["value"] == 50.0


def test_a_rejected_webhook_is_not_retried():
    receiver = WebhookReceiver(statuses=[410])
    try:
        channel = NotificationChannel.objects.create(name="gone", kind="webhook", target=receiver.url)
        delivery = delivery_for(channel)
        delivery_attempt(delivery=delivery)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.last_error) == ("failed", "HTTP 410")
    finally:
        receiver.close()


def test_email_goes_to_the_smtp_server(settings):
    sink = SmtpSink()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        channel = NotificationChannel.objects.create(name="oncall", kind="email", target="oncall@example.com")
        delivery = delivery_for(channel)
        delivery_attempt(delivery=delivery)
        delivery.refresh_from_db()
        assert delivery.status == "sent"
        [(recipients, message)] = sink.messages
        assert recipients == ["oncall@example.com"] and "spike: observed 50" in message
    finally:
        sink.close()


def test_a_channel_with_an_unusable_target_fails_at_once_with_the_reason():
    channel = NotificationChannel.objects.create(name="typo", kind="webhook", target="hooks.example.com/in",
                                                 secret="s")
    delivery = delivery_for(channel)
    delivery_attempt(delivery=delivery)  # no retry: the same target would fail the same way
    delivery.refresh_from_db()
    assert delivery.status == "failed" and "fix the channel's target" in delivery.last_error


def test_channels_and_rules_are_checked_before_they_are_saved():
    from django.core.exceptions import ValidationError

    def errors(obj):
        with pytest.raises(ValidationError) as raised:
            obj.full_clean(exclude=["sensor"])
        return raised.value.message_dict

    assert "target" in errors(NotificationChannel(name="x", kind="webhook", target="hooks.example.com", secret="s"))
    assert "secret" in errors(NotificationChannel(name="x", kind="webhook", target="https://hooks.example.com/in"))
    assert "target" in errors(NotificationChannel(name="x", kind="email", target="ops at example.com"))
    NotificationChannel(name="x", kind="webhook", target="https://hooks.example.com/in", secret="s").full_clean()
    assert "weaker scores are not recorded" in errors(AlertRule(threshold=0.1, clear_below=0.1))["threshold"][0]
    assert "clear_below" in errors(AlertRule(threshold=0.5, clear_below=0.6))
    AlertRule(threshold=0.6, clear_below=0.3).full_clean(exclude=["sensor"])
