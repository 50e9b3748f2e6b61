from django.core.management.base import BaseCommand, CommandError

from sensorhub.apikeys import api_key_revoke
from sensorhub.models import ApiKey


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the 8 characters after 'shk_') or by the full key."

    def add_arguments(self, parser):
        parser.add_argument("key")

    def handle(self, *args, key, **options):
        prefix = key.split("_")[1] if key.startswith("shk_") else key
        api_key = ApiKey.objects.filter(prefix=prefix).first()
        if api_key is None:
            raise CommandError(f"no API key with prefix {prefix!r}")
        if api_key_revoke(key=api_key):
            self.stdout.write(f"Revoked {api_key}.")
        else:
            self.stdout.write(f"{api_key} was already revoked.")
