import os
import subprocess
import sys

import pytest
from django.test import override_settings

from tests.conftest import ROOT
from tests.http import free_port, get_json, wait_for_http


def test_it_says_alive_without_touching_dependencies(client):
    # No django_db mark: any database access here would raise.
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_it_checks_the_database(client):
    response = client.get("/health/db")
    assert response.status_code == 200
    assert response.json()["database"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_it_is_ready_when_database_redis_worker_and_migrations_are_ok(client, celery_worker_process):
    response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert body["failing"] == []
    assert celery_worker_process["name"] in body["checks"]["worker"]["workers"]
    storage = body["checks"]["storage"]
    assert storage["strategy"] in ("plain", "timescaledb")
    assert storage["timescaledb"] == "plain PostgreSQL" if storage["strategy"] == "plain" else storage["timescaledb"]


@pytest.mark.django_db
def test_it_names_redis_when_redis_is_unreachable(client):
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(REDIS_URL=closed):
        response = client.get("/health/ready")
    body = response.json()
    assert response.status_code == 503
    assert "redis" in body["failing"]
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["worker"]["error"] == "skipped: Redis is unreachable"
    assert body["checks"]["database"]["ok"] is True


@pytest.fixture
def server_without_database(tmp_path):
    """The real web server (gunicorn) started with a database that does not answer."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"postgres://nobody@127.0.0.1:{free_port()}/nowhere"}
    log = open(tmp_path / "gunicorn.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "sensorhub.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--no-control-socket"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_it_keeps_serving_health_and_reports_the_database_when_it_is_down(server_without_database):
    status, body = get_json(f"{server_without_database}/health/ready")
    assert status == 503
    assert body["failing"][:1] == ["database"]
    assert "connection" in body["checks"]["database"]["error"].lower()
    assert body["checks"]["migrations"]["error"] == "skipped: the database is unreachable"
    assert get_json(f"{server_without_database}/health/db")[0] == 503
    assert get_json(f"{server_without_database}/health") == (200, {"status": "ok"})
