"""Rollups at 1 minute and 1 hour: continuous aggregates (plus compression) on TimescaleDB, tables kept by the
``ingestion.refresh_rollups`` beat task on plain PostgreSQL. Same names and columns either way."""
from django.db import migrations


def apply_rollups(apps, schema_editor):
    from sensorhub.storage import apply_rollups as apply

    apply(schema_editor)


class Migration(migrations.Migration):
    # Continuous aggregates cannot be created inside a transaction block.
    atomic = False

    dependencies = [("ingestion", "0002_readings_storage")]

    operations = [migrations.RunPython(apply_rollups, migrations.RunPython.noop)]
