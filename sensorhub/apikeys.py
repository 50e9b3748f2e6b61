"""API keys: creation, revocation, authentication (DRF), scope permissions and per-key rate limits."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_ratelimit.core import _split_rate, get_usage
from rest_framework import exceptions, permissions
from rest_framework.authentication import BaseAuthentication

from sensorhub.choices import Scope
from sensorhub.models import ApiKey

KEY_PATTERN = re.compile(r"^shk_([a-z0-9]{8})_([A-Za-z0-9_-]{20,})$")
LAST_USED_RESOLUTION = timedelta(minutes=1)
logger = logging.getLogger(__name__)


def _hash(secret: str) -> str:
    # Keys are 256-bit random strings, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(
    *,
    name: str,
    scopes: Iterable[str],
    sites: Iterable = (),
    sensors: Iterable = (),
    expires_at: datetime | None = None,
    may_register_sensors: bool = False,
    created_by=None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with the full secret, which is not stored and cannot be shown again."""
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(Scope.values)
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}; valid: {', '.join(Scope.values)}")
    if not scopes:
        raise ValueError(f"give at least one scope; valid: {', '.join(Scope.values)}")
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        prefix = secrets.token_hex(4)
        key = ApiKey.objects.create(
            name=name, prefix=prefix, secret_hash=_hash(secret), scopes=scopes, expires_at=expires_at,
            may_register_sensors=may_register_sensors, created_by=created_by,
        )
        key.sites.set(sites)
        key.sensors.set(sensors)
    return key, f"shk_{prefix}_{secret}"


def api_key_revoke(*, key: ApiKey) -> bool:
    """Revoke a key; returns False if it was already revoked. Conditional UPDATE: safe against concurrent calls."""
    return bool(ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now()))


def api_key_from_secret(raw: str) -> ApiKey | None:
    match = KEY_PATTERN.match(raw)
    if not match:
        return None
    prefix, secret = match.groups()
    # Every API request runs this: a plain query (ApiKey.objects.usable(), without the ORM's compilation).
    key = next(iter(ApiKey.objects.raw(
        f"SELECT * FROM {ApiKey._meta.db_table} WHERE prefix = %s AND revoked_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > %s)", [prefix, timezone.now()])), None)
    if key is None or not hmac.compare_digest(key.secret_hash, _hash(secret)):
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # At most one write a minute per key, whatever the request rate.
        ApiKey.objects.filter(pk=key.pk).exclude(last_used_at__gt=now - LAST_USED_RESOLUTION).update(last_used_at=now)
    return key


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. ``request.user`` is anonymous; ``request.auth`` the key."""

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        raw = header[7:].strip() if header[:7].lower() == "bearer " else request.headers.get("X-API-Key", "").strip()
        if not raw:
            return None
        key = api_key_from_secret(raw)
        if key is None:
            raise exceptions.AuthenticationFailed(
                "Invalid, expired or revoked API key. Create a new one with manage.py create_api_key or in the admin."
            )
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser(), key

    def authenticate_header(self, request):
        return 'Bearer realm="sensorhub"'


def restrict_to_key(request, sensors):
    """Narrow a Sensor queryset to what the request's API key may see (keys limited to sites or sensors)."""
    if isinstance(request.auth, ApiKey):
        allowed = request.auth.restricted_sensor_ids()
        if allowed is not None:
            return sensors.filter(pk__in=allowed)
    return sensors


def granted_scopes(request) -> set[str]:
    if isinstance(request.auth, ApiKey):
        return set(request.auth.scopes)
    user = request.user
    if user and user.is_authenticated:
        # Dashboard users (session login): staff may do everything, others may read.
        if user.is_staff:
            return set(Scope.values)
        return {Scope.READINGS_READ, Scope.ML_READ}
    return set()


class HasScope(permissions.BasePermission):
    """Views declare ``required_scopes`` (all needed), optionally per method via ``required_scopes_by_method``."""

    def has_permission(self, request, view):
        if request.auth is None and not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated("Send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'.")
        needed = set(getattr(view, "required_scopes_by_method", {}).get(request.method, None)
                     or getattr(view, "required_scopes", ()))
        missing = needed - granted_scopes(request)
        if missing:
            raise exceptions.PermissionDenied(
                f"This API key lacks the scope(s) {', '.join(sorted(missing))} needed here."
            )
        enforce_rate_limit(request, needed)
        return True


class RateLimited(exceptions.Throttled):
    default_detail = "Rate limit exceeded for this API key."


def _rate_for(scopes: set[str]) -> str | None:
    rates = settings.SENSORHUB_RATE_LIMITS
    # The strictest rate among the scopes the endpoint needs applies.
    candidates = [rates[s] for s in scopes if s in rates]
    return min(candidates, key=_per_second) if candidates else None


def _per_second(rate: str) -> float:
    count, period = _split_rate(rate)
    return count / period


def enforce_rate_limit(request, scopes: set[str]) -> None:
    if not isinstance(request.auth, ApiKey):
        return
    rate = _rate_for(scopes)
    if rate is None:
        return
    group = "sensorhub:" + ",".join(sorted(scopes))
    try:
        usage = get_usage(request._request, group=group, key=lambda group, req: str(request.auth.pk), rate=rate,
                          increment=True)
    except Exception:  # the cache (Redis) is down: serve rather than refuse devices, and say so in the logs
        logger.warning("rate limit not enforced: the cache is unavailable", exc_info=True)
        return
    if usage and usage["should_limit"]:
        wait = max(1, int(usage["time_left"]))
        raise RateLimited(wait=wait, detail=f"Rate limit of {rate} for this API key exceeded; retry in {wait} s.")
