"""`make run` as a new user meets it: embedded services, migrations, admin, demo, web, worker and beat; Ctrl-C stops all."""
import http.cookiejar
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime

import psutil
import pytest

from tests.conftest import ROOT
from tests.http import free_port, get, get_json

pytestmark = pytest.mark.slow


def login(base: str, username: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/admin/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token,
                                   "next": "/admin/"}).encode()
    request = urllib.request.Request(f"{base}/admin/login/?next=/admin/", data=form,
                                     headers={"Referer": f"{base}/admin/login/"})
    with opener.open(request) as response:
        return response.geturl(), response.read().decode()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def launcher_env(var, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY_FILE")}
    return {**env, "SENSORHUB_VAR_DIR": str(var), **extra}


@pytest.fixture
def launcher(tmp_path):
    port = free_port()
    env = launcher_env(tmp_path / "var", PORT=str(port))
    output = tmp_path / "launcher.log"
    with open(output, "w") as log:
        proc = subprocess.Popen([sys.executable, "scripts/stack.py", "run"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc, f"http://127.0.0.1:{port}", output, tmp_path / "var"
    finally:
        if proc.poll() is None:  # a failed test: stop what the launcher started too, not only the launcher
            tree = psutil.Process(proc.pid).children(recursive=True)
            proc.kill()
            for child in tree:
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
        subprocess.run([sys.executable, "scripts/stack.py", "down"], cwd=ROOT, env=env, capture_output=True)


def wait_for_line(proc, output, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = output.read_text()
        if text in content:
            return content
        assert proc.poll() is None, f"the launcher exited early:\n{content[-4000:]}"
        time.sleep(0.5)
    raise AssertionError(f"{text!r} not printed within {timeout} s:\n{output.read_text()[-4000:]}")


def test_make_run_brings_up_the_whole_product_and_ctrl_c_stops_it(launcher):
    proc, base, output, var = launcher
    printed = wait_for_line(proc, output, "Press Ctrl-C to stop.", timeout=120)

    status, ready = get_json(f"{base}/health/ready")
    assert status == 200, ready
    assert {"database", "redis", "worker", "migrations", "storage"} <= ready["checks"].keys()

    username, password = re.search(r"username: (\S+)\s+password: (\S+)", printed).groups()
    landed, page = login(base, username, password)
    assert landed.endswith("/admin/") and "Log out" in page

    status, docs, _ = get(f"{base}/api/docs/")
    assert status == 200 and b"swagger-ui" in docs
    _, metrics, _ = get(f"{base}/metrics")
    assert re.search(rb'django_http_responses_total_by_status_total\{status="200"\} [1-9]', metrics)

    # The demo as a new user tries it: a spike posted to a demo sensor is an explained event and one alert.
    made = subprocess.run([sys.executable, "scripts/stack.py", "manage", "create_api_key", "--name", "demo",
                           "--scopes", "readings:write,readings:read"], cwd=ROOT, env=launcher_env(var),
                          capture_output=True, text=True, check=True)
    key = made.stdout.strip().splitlines()[-1]
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    posted = urllib.request.Request(f"{base}/api/v1/readings/", method="POST",
                                    data=json.dumps([{"sensor": "sensor-001", "time": at, "value": 60}]).encode(),
                                    headers={"X-API-Key": key, "Content-Type": "application/json"})
    assert json.load(urllib.request.urlopen(posted, timeout=10))["accepted"] == 1
    headers = {"X-API-Key": key}
    deadline, event, alerts = time.monotonic() + 120, None, []
    while time.monotonic() < deadline and not (event and alerts and when(alerts[0]["last_event_at"]) >= when(at)):
        time.sleep(1)  # the worker may still be training the demo's models when the reading arrives
        _, found = get_json(f"{base}/api/v1/anomalies/?sensor=sensor-001&min_score=0.5", headers=headers)
        event = next((e for e in found["results"] if e["value"] == 60), None)
        alerts = get_json(f"{base}/api/v1/alerts/?sensor=sensor-001&status=open", headers=headers)[1]["results"]
    assert event is not None, "no event for the posted spike within 120 s"
    assert event["kind"] == "spike" and "observed 60" in event["explanation"], event
    # one open alert, opened by the spike (or, had a demo anomaly of the last half hour opened one, extended by it)
    assert len(alerts) == 1 and when(alerts[0]["last_event_at"]) >= when(at), alerts

    # Every process's log lines go to var/log/<name>.log; the terminal keeps the banner and warnings, not INFO lines.
    worker_log = (var / "log" / "worker.log").read_text()
    assert "worker@" in worker_log and '"level": "INFO"' in worker_log
    assert (var / "log" / "web.log").exists() and (var / "log" / "beat.log").exists()
    assert '"level": "INFO"' not in output.read_text()

    children = psutil.Process(proc.pid).children(recursive=True)
    names = " ".join(" ".join(child.cmdline()) for child in children)
    assert "gunicorn" in names and "worker" in names and "beat" in names

    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    assert proc.wait(timeout=60) == 0
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"still running after Ctrl-C: {[p.cmdline() for p in alive]}"
    with pytest.raises(OSError):
        get(f"{base}/health", timeout=2)
    printed = output.read_text()
    assert "all processes stopped" in printed
    assert "WorkerLostError" not in printed  # Celery finished its running tasks instead of losing them


def test_the_terminal_shows_warnings_and_errors_in_one_readable_line_each(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("stack", ROOT / "scripts" / "stack.py")
    stack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stack)
    monkeypatch.setattr(stack, "VAR", tmp_path)
    quiet, loud = stack.ProcessLog("worker", echo_all=False), stack.ProcessLog("worker", echo_all=True)
    info = json.dumps({"level": "INFO", "logger": "anomalies.services", "message": "trained anomaly model"})
    failed = json.dumps({"level": "ERROR", "logger": "celery.app.trace", "message": "Task failed",
                         "exc_info": "Traceback (most recent call last):\n  ...\nValueError: bad value"})
    assert quiet.terminal_line(info) is None
    assert quiet.terminal_line(failed) == f"ERROR celery.app.trace: Task failed (traceback in {tmp_path}/log/worker.log)"
    assert quiet.terminal_line("[2026-12-04 07:00:00 +0000] [12] [INFO] Booting worker with pid: 12") is None
    assert quiet.terminal_line("[2026-12-04 07:00:00 +0000] [12] [ERROR] Worker timeout") is not None
    assert quiet.terminal_line(" -------------- worker@host v5.5") is None
    assert loud.terminal_line(info) == info
