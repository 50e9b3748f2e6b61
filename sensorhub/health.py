"""Health endpoints. /health needs nothing; /health/db the database; /health/ready everything the product needs."""
from __future__ import annotations

import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _timed(check: Callable[[], dict]) -> dict:
    started = time.perf_counter()
    try:
        result = {"ok": True, **check()}
    except Exception as exc:  # a health check reports every failure instead of raising it
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def check_redis() -> dict:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        server = client.info("server")
        return {"server": "valkey" if "valkey_version" in server else "redis",
                "version": server.get("valkey_version") or server.get("redis_version")}
    finally:
        client.close()


def check_workers() -> dict:
    from sensorhub.celery import app

    # limit=1: answer as soon as one worker replies instead of always waiting out the timeout.
    replies = app.control.ping(timeout=settings.SENSORHUB_HEALTH_WORKER_TIMEOUT, limit=1)
    workers = sorted(name for reply in replies for name in reply)
    if not workers:
        raise RuntimeError("no Celery worker answered; start one with: celery -A sensorhub worker")
    return {"workers": workers}


def check_migrations() -> dict:
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = [f"{migration.app_label}.{migration.name}" for migration, _ in pending]
        raise RuntimeError(f"{len(names)} migration(s) not applied: {', '.join(names[:5])}; run manage.py migrate")
    return {}


def check_storage() -> dict:
    from sensorhub.storage import current_storage

    storage = current_storage()
    if not storage.get("strategy"):
        raise RuntimeError(storage["detail"])
    return storage


def _close_broken_connection() -> None:
    # After a failed query the connection may be unusable; drop it so the next request reconnects.
    try:
        connection.close_if_unusable_or_obsolete()
    except DatabaseError:
        connection.close()


@never_cache
@require_GET
def health(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def health_db(request):
    result = _timed(check_database)
    _close_broken_connection()
    return JsonResponse({"status": "ok" if result["ok"] else "error", "database": result},
                        status=200 if result["ok"] else 503)


@never_cache
@require_GET
def health_ready(request):
    checks = {"database": _timed(check_database), "redis": _timed(check_redis)}
    skipped = {"ok": False, "error": "skipped: the database is unreachable"}
    if checks["database"]["ok"]:
        checks["migrations"] = _timed(check_migrations)
        checks["storage"] = _timed(check_storage)
    else:
        checks["migrations"] = checks["storage"] = skipped
    checks["worker"] = (
        _timed(check_workers) if checks["redis"]["ok"] else {"ok": False, "error": "skipped: Redis is unreachable"}
    )
    _close_broken_connection()
    ok = all(check["ok"] for check in checks.values())
    failing = [name for name, check in checks.items() if not check["ok"]]
    return JsonResponse({"status": "ok" if ok else "error", "failing": failing, "checks": checks},
                        status=200 if ok else 503)
