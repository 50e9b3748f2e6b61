from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ingestion.models import Sensor, Site
from sensorhub.apikeys import api_key_create
from sensorhub.choices import Scope


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Create an API key. The key is printed alone on the last line (scripts read it) and is never shown again."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", required=True, type=_csv, help=f"Comma-separated: {', '.join(Scope.values)}.")
        parser.add_argument("--sensors", type=_csv, default=[], help="Limit the key to these sensor ids (slugs).")
        parser.add_argument("--sites", type=_csv, default=[], help="Limit the key to these sites' sensors (slugs).")
        parser.add_argument("--expires-days", type=int, help="Expire after this many days (default: never).")
        parser.add_argument("--may-register-sensors", action="store_true",
                            help="Readings for unknown sensors create them (if SENSORHUB_AUTO_REGISTER_SENSORS).")

    def handle(self, *args, name, scopes, sensors, sites, expires_days, may_register_sensors, **options):
        sensor_objs = list(Sensor.objects.filter(slug__in=sensors))
        site_objs = list(Site.objects.filter(slug__in=sites))
        missing = (set(sensors) - {s.slug for s in sensor_objs}) | (set(sites) - {s.slug for s in site_objs})
        if missing:
            raise CommandError(f"unknown sensor or site id(s): {', '.join(sorted(missing))}")
        if expires_days is not None and expires_days < 1:
            raise CommandError("--expires-days must be at least 1")
        try:
            key, secret = api_key_create(
                name=name, scopes=scopes, sensors=sensor_objs, sites=site_objs,
                expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
                may_register_sensors=may_register_sensors,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Created API key {key.name!r} (prefix {key.prefix}, scopes {', '.join(key.scopes)}). "
                          "Store it now: it cannot be shown again.")
        self.stdout.write(secret)
