import stat

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_it_creates_the_admin_once_and_keeps_the_password_private(tmp_path, capsys):
    creds = tmp_path / "admin-credentials.txt"
    call_command("ensure_admin", credentials_file=creds)
    printed = capsys.readouterr().out
    password = creds.read_text().split("password: ")[1].strip()

    assert password in printed
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert authenticate(username="admin", password=password).is_superuser

    call_command("ensure_admin", credentials_file=creds)
    assert password not in capsys.readouterr().out
    assert authenticate(username="admin", password=password)
