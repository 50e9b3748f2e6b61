"""docs/db stays true to the migrations: schema.sql and erd.dot regenerate byte for byte from the freshly migrated test
database, erd.png was rendered from the committed erd.dot, and docs/db/README.md names every table and view."""
import importlib.util
import re

import pytest
from django.db import connection

from sensorhub.storage import timescaledb_version
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

DOCS = ROOT / "docs" / "db"
STALE = "docs/db is stale: run `make db-docs` and commit the result"


def load_db_docs():
    spec = importlib.util.spec_from_file_location("db_docs", ROOT / "scripts" / "db_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


db_docs = load_db_docs()


def plain_postgresql_only() -> None:
    with connection.cursor() as cursor:
        if timescaledb_version(cursor):
            pytest.skip("TimescaleDB database: docs/db/schema.sql documents the plain-PostgreSQL layout "
                        "(hypertable and continuous aggregates differ)")


@pytest.fixture
def conninfo() -> str:
    """The test database (pytest-django's test_<name>), as a libpq connection string for pg_dump and psycopg."""
    from psycopg.conninfo import make_conninfo

    plain_postgresql_only()
    db = connection.settings_dict
    params = {"dbname": db["NAME"], "user": db.get("USER"), "password": db.get("PASSWORD"),
              "host": db.get("HOST"), "port": str(db.get("PORT") or "")}
    return make_conninfo(**{key: value for key, value in params.items() if value})


def test_schema_sql_and_erd_regenerate_identically_from_the_migrations(conninfo, tmp_path):
    db_docs.write(conninfo, tmp_path, png=False)
    for name in ("schema.sql", "erd.dot"):
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        committed = (DOCS / name).read_text(encoding="utf-8")
        if fresh != committed:
            import difflib

            diff = "\n".join(list(difflib.unified_diff(committed.splitlines(), fresh.splitlines(),
                                                       f"committed/{name}", f"generated/{name}", lineterm=""))[:60])
            pytest.fail(f"{STALE}. docs/db/{name} differs from the migrated schema:\n{diff}")


def test_the_committed_png_was_rendered_from_the_committed_dot():
    embedded = db_docs.png_source_hash((DOCS / "erd.png").read_bytes())
    assert embedded == db_docs.sha256((DOCS / "erd.dot").read_text(encoding="utf-8")), STALE


def test_the_output_does_not_depend_on_the_database_name_or_server(conninfo):
    files = db_docs.generate(conninfo)
    name = connection.settings_dict["NAME"]
    assert name.startswith("test_")
    for content in files.values():
        assert name not in content
        assert "\\restrict" not in content and "Dumped from database version" not in content


def test_check_mode_reports_a_stale_copy(conninfo, tmp_path, capsys):
    for name in ("schema.sql", "erd.dot", "erd.png"):
        (tmp_path / name).write_bytes((DOCS / name).read_bytes())
    assert db_docs.main(["--check", "--output-dir", str(tmp_path), "--database-url", conninfo]) == 0

    schema = tmp_path / "schema.sql"
    table = "CREATE TABLE public.ingestion_site ("
    stale = schema.read_text(encoding="utf-8").replace(table, "CREATE TABLE public.x (")
    schema.write_text(stale, encoding="utf-8")
    assert db_docs.main(["--check", "--output-dir", str(tmp_path), "--database-url", conninfo]) == 1
    err = capsys.readouterr().err
    assert f"+{table}" in err and "make db-docs" in err


def test_the_readme_describes_every_table_and_view():
    plain_postgresql_only()
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public' "
                       "ORDER BY table_name")
        relations = cursor.fetchall()
    readme = (DOCS / "README.md").read_text(encoding="utf-8")
    missing = [f"{name} ({kind})" for name, kind in relations
               if not re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", readme)]
    assert len(relations) > 20
    assert not missing, f"docs/db/README.md does not describe: {', '.join(missing)}"


def test_volatile_dump_lines_are_dropped():
    dump = ("--\n-- PostgreSQL database dump\n--\n\n\\restrict abc123\n\n-- Dumped from database version 18.6\n"
            "-- Dumped by pg_dump version 18.6\n\nSET lock_timeout = 0;\n\n\\unrestrict abc123\n\n")
    text = db_docs.normalise_dump(dump)
    assert text.startswith(db_docs.HEADER)
    assert text.endswith("\nSET lock_timeout = 0;\n")
    assert "abc123" not in text and "18.6" not in text
