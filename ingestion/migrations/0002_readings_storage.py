"""Chooses the readings table's storage once: a TimescaleDB hypertable when the extension is available, otherwise
plain PostgreSQL with a BRIN index on time. The choice is recorded in sensorhub.StorageBackend."""
from django.db import migrations


def apply_storage(apps, schema_editor):
    from sensorhub.storage import apply_readings_storage

    apply_readings_storage(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0001_initial"),
        ("sensorhub", "0001_initial"),
    ]

    operations = [migrations.RunPython(apply_storage, migrations.RunPython.noop)]
