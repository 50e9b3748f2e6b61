from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from anomalies.streaming import score_file


class Command(BaseCommand):
    help = ("Stream a timestamp,value CSV through the production anomaly detector (default settings, no labels) "
            "and write timestamp,anomaly_score.")

    def add_arguments(self, parser):
        parser.add_argument("--input", required=True, type=Path)
        parser.add_argument("--output", required=True, type=Path)

    def handle(self, *args, input, output, **options):
        if not input.exists():
            raise CommandError(f"{input} does not exist")
        try:
            timestamps, _, rate = score_file(input, output)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Scored {len(timestamps):,} readings at {rate:,.0f} readings/s → {output}")
