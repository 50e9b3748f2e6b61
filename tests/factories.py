"""Small factories for tests: each call makes a valid object; keyword arguments override fields."""
import itertools
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from ingestion.choices import SensorType
from ingestion.models import Sensor, SensorReading, Site

_seq = itertools.count(1)


def make_user(username: str, *, superuser: bool = False, password: str = "correct horse battery staple"):
    User = get_user_model()
    if superuser:
        return User.objects.create_superuser(username=username, email=f"{username}@example.com", password=password)
    return User.objects.create_user(username=username, email=f"{username}@example.com", password=password)


def make_site(**fields) -> Site:
    n = next(_seq)
    fields.setdefault("slug", f"site-{n:03d}")
    fields.setdefault("name", f"Site {n}")
    return Site.objects.create(**fields)


def make_sensor(**fields) -> Sensor:
    n = next(_seq)
    fields.setdefault("slug", f"sensor-{n:03d}")
    fields.setdefault("name", f"Sensor {n}")
    fields.setdefault("type", SensorType.TEMPERATURE)
    fields.setdefault("unit", "°C")
    if "site" not in fields:
        fields["site"] = make_site()
    return Sensor.objects.create(**fields)


def make_readings(sensor: Sensor, values, *, end=None, step=timedelta(minutes=1)) -> list[SensorReading]:
    end = end or timezone.now().replace(microsecond=0)
    values = list(values)
    rows = [SensorReading(sensor=sensor, time=end - step * (len(values) - 1 - i), value=v) for i, v in enumerate(values)]
    return SensorReading.objects.bulk_create(rows)


def make_api_key(*scopes: str, name: str = "test key", **fields) -> str:
    """Returns the full secret of a new key with the given scopes."""
    from sensorhub.apikeys import api_key_create

    _, secret = api_key_create(name=name, scopes=scopes or ("readings:write",), **fields)
    return secret
