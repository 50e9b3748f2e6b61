"""Read-only views for BI tools (Grafana, Metabase, Superset): stable names and columns, slugs instead of ids, so
dashboards do not break when internals change. docs/db/README.md shows how to give a read-only role access."""
from django.db import migrations

VIEWS = {
    "bi_sensor": """
        SELECT s.slug AS sensor, s.name, s.type, s.unit, s.active, t.slug AS site, t.name AS site_name,
               s.valid_min, s.valid_max, s.expected_interval
        FROM ingestion_sensor s JOIN ingestion_site t ON t.id = s.site_id""",
    "bi_reading": """
        SELECT s.slug AS sensor, t.slug AS site, r.time, r.value
        FROM ingestion_sensorreading r JOIN ingestion_sensor s ON s.id = r.sensor_id
        JOIN ingestion_site t ON t.id = s.site_id""",
    "bi_reading_1h": """
        SELECT s.slug AS sensor, t.slug AS site, h.bucket AS time, h.n AS count, h.total / h.n AS avg,
               h.vmin AS min, h.vmax AS max
        FROM ingestion_reading_1h h JOIN ingestion_sensor s ON s.id = h.sensor_id
        JOIN ingestion_site t ON t.id = s.site_id""",
}


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0004_idempotency_keys")]

    operations = [
        migrations.RunSQL(f"CREATE VIEW {name} AS {sql}", f"DROP VIEW IF EXISTS {name}") for name, sql in VIEWS.items()
    ]
