import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sensorhub.apikeys import api_key_from_secret
from sensorhub.models import ApiKey
from tests.factories import make_sensor, make_user

pytestmark = pytest.mark.django_db


def create(*args) -> str:
    out = io.StringIO()
    call_command("create_api_key", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip().splitlines()[-1]


def test_the_command_prints_the_key_alone_on_its_last_line_and_stores_only_a_hash():
    make_sensor(slug="sensor-001")
    secret = create("--name", "gateway 7", "--scopes", "readings:write,readings:read", "--sensors", "sensor-001")
    key = ApiKey.objects.get()
    assert secret.startswith(f"shk_{key.prefix}_")
    assert secret.split("_", 2)[2] not in key.secret_hash
    assert sorted(key.scopes) == ["readings:read", "readings:write"]
    assert [s.slug for s in key.sensors.all()] == ["sensor-001"]
    assert api_key_from_secret(secret) == key


@pytest.mark.parametrize("args, words", [
    (["--scopes", "readings:delete"], "unknown scope"),
    (["--scopes", "readings:read", "--sensors", "nope"], "unknown sensor or site"),
])
def test_the_command_explains_bad_arguments(args, words):
    with pytest.raises(CommandError, match=words):
        create("--name", "bad", *args)


def test_revoking_stops_the_key_at_once():
    secret = create("--name", "old", "--scopes", "readings:read")
    call_command("revoke_api_key", secret.split("_")[1], stdout=io.StringIO())
    assert api_key_from_secret(secret) is None


def test_last_use_is_recorded_at_most_once_a_minute():
    secret = create("--name", "k", "--scopes", "readings:read")
    api_key_from_secret(secret)
    first = ApiKey.objects.get().last_used_at
    api_key_from_secret(secret)
    assert ApiKey.objects.get().last_used_at == first
    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=5))
    api_key_from_secret(secret)
    assert ApiKey.objects.get().last_used_at > first - timedelta(minutes=1)


def test_a_key_made_in_the_admin_is_shown_once(client):
    client.force_login(make_user("alice", superuser=True))
    response = client.post("/admin/sensorhub/apikey/add/", {"name": "from admin", "scopes": ["readings:write"]},
                           follow=True)
    message = next(m.message for m in response.context["messages"])
    secret = message.rsplit(" ", 1)[1]
    key = ApiKey.objects.get()
    assert api_key_from_secret(secret) == key and key.created_by.username == "alice"
    assert secret not in client.get(f"/admin/sensorhub/apikey/{key.pk}/change/").content.decode()
