import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def database_url_for(name: str) -> str:
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, tmp_path_factory):
    """A real Celery worker process, consuming from the real broker and writing to the test database."""
    from sensorhub.celery import app

    name = f"pytest-{uuid.uuid4().hex[:8]}@localhost"
    env = {**os.environ, "DATABASE_URL": database_url_for(settings.DATABASES["default"]["NAME"])}
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "sensorhub", "worker", "--pool", "solo", "--loglevel", "INFO",
             "--hostname", name, "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[name], timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Celery worker did not come up:\n{log_path.read_text()[-3000:]}")
        yield {"name": name, "log": log_path}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def settled_worker(transactional_db):
    """For tests that commit data the Celery worker acts on: before the test database is flushed, wait until the
    worker has finished every task those commits enqueued (a flush racing a scoring task deadlocks)."""
    yield
    import redis

    from sensorhub.celery import app

    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        inspect = app.control.inspect(timeout=0.5)
        busy = [task for tasks in (inspect.active() or {}).values() for task in tasks]
        reserved = [task for tasks in (inspect.reserved() or {}).values() for task in tasks]
        if not app.control.ping(timeout=0.5):
            client.delete("celery")  # no worker in this session: nothing will run them
            return
        if not busy and not reserved and client.llen("celery") == 0:
            return
        time.sleep(0.2)
    pytest.fail("the Celery worker did not finish its tasks within 60 s")
