from datetime import timedelta

import pytest
from django.utils import timezone

from ingestion.models import Sensor
from tests.factories import make_readings, make_sensor, make_site, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/ingestion/sensor/"


@pytest.fixture
def alice_client(client):
    client.force_login(make_user("alice", superuser=True))
    return client


def test_it_lists_sensors_with_their_latest_reading_and_its_age(alice_client):
    sensor = make_sensor(slug="boiler-temp", unit="°C")
    make_readings(sensor, [20.0, 21.25], end=timezone.now() - timedelta(minutes=10))
    make_sensor(slug="silent-one")

    body = alice_client.get(CHANGELIST).content.decode()

    assert "21.25 °C" in body
    assert "10\xa0minutes ago" in body
    assert "never reported" in body


def test_the_changelist_costs_the_same_queries_for_many_sensors(alice_client, django_assert_max_num_queries):
    for _ in range(3):
        make_readings(make_sensor(), [1.0])
    alice_client.get(CHANGELIST)
    for _ in range(20):
        make_readings(make_sensor(), [1.0])
    with django_assert_max_num_queries(12):
        response = alice_client.get(CHANGELIST)
    assert response.status_code == 200


def test_it_searches_and_filters(alice_client):
    north, south = make_site(name="North plant"), make_site(name="South plant")
    make_sensor(slug="north-humidity", type="humidity", site=north)
    make_sensor(slug="south-temp", type="temperature", site=south, active=False)

    by_site_name = alice_client.get(CHANGELIST, {"q": "North"}).content.decode()
    assert "north-humidity" in by_site_name and "south-temp" not in by_site_name

    inactive = alice_client.get(CHANGELIST, {"active__exact": "0"}).content.decode()
    assert "south-temp" in inactive and "north-humidity" not in inactive

    by_type = alice_client.get(CHANGELIST, {"type__exact": "humidity"}).content.decode()
    assert "north-humidity" in by_type and "south-temp" not in by_type


def test_it_filters_sensors_that_stopped_reporting(alice_client):
    fresh, stale = make_sensor(slug="fresh-one"), make_sensor(slug="stale-one")
    make_readings(fresh, [1.0])
    make_readings(stale, [1.0], end=timezone.now() - timedelta(hours=5))
    body = alice_client.get(CHANGELIST, {"reporting": "stale"}).content.decode()
    assert "stale-one" in body and "fresh-one" not in body


def test_it_deactivates_and_activates_in_bulk(alice_client):
    sensors = [make_sensor() for _ in range(3)]
    already_inactive = make_sensor(active=False)
    selected = [s.pk for s in sensors] + [already_inactive.pk]

    response = alice_client.post(CHANGELIST, {"action": "deactivate", "_selected_action": selected}, follow=True)

    assert "3 sensors deactivated." in response.content.decode()
    assert not Sensor.objects.filter(pk__in=selected, active=True).exists()

    alice_client.post(CHANGELIST, {"action": "activate", "_selected_action": [sensors[0].pk]})
    assert Sensor.objects.filter(active=True).count() == 1


def test_bob_without_staff_rights_cannot_open_the_admin(client):
    client.force_login(make_user("bob"))
    response = client.get(CHANGELIST)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
