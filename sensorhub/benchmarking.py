"""The real web server for benchmarks: gunicorn as `make run` starts it, on a free loopback port."""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings


def default_web_layout() -> tuple[int, int]:
    """Gunicorn's workers and threads as `make run` picks them (scripts/stack.py): WEB_CONCURRENCY processes (default
    two per core) × WEB_THREADS threads (default 2)."""
    return (int(os.environ.get("WEB_CONCURRENCY") or 2 * (os.cpu_count() or 1)),
            int(os.environ.get("WEB_THREADS") or 2))


@contextmanager
def gunicorn_server(*, workers: int, threads: int, rate_limits: str) -> Iterator[int]:
    """Start gunicorn with production settings (DEBUG off, quiet logs, the given rate limits), wait until /health
    answers, yield its port, and stop it afterwards."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "SENSORHUB_DEBUG": "false", "SENSORHUB_LOG_LEVEL": "warning",
           "SENSORHUB_RATE_LIMITS": rate_limits}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "sensorhub.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
         str(workers), "--threads", str(threads), "--no-control-socket", "--timeout", "120",
         "--keep-alive", "5"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_health(server, port)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for_health(server: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with code {server.returncode} during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /health within 60 s")
