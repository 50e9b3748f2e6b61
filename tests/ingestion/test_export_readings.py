import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from ingestion.management.commands import export_readings
from tests.factories import make_readings, make_sensor

pytestmark = pytest.mark.django_db

END = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
HEADER = "sensor,time,value\n"


def export(path, *args) -> str:
    out = io.StringIO()
    call_command("export_readings", "--output", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def two_sensors():
    # Created in the reverse of slug order, so ordering by id would put them the wrong way round.
    beta = make_sensor(slug="beta")
    alpha = make_sensor(slug="alpha")
    make_readings(beta, [21.5, 22.25], end=END)
    make_readings(alpha, [0.1, -3.0], end=END)
    return alpha, beta


def test_it_exports_every_reading_ordered_by_time_then_sensor(tmp_path, two_sensors):
    path = tmp_path / "readings.csv"
    summary = export(path)
    assert path.read_text() == (
        HEADER
        + "alpha,2026-12-03T15:59:00+00:00,0.1\n"
        + "beta,2026-12-03T15:59:00+00:00,21.5\n"
        + "alpha,2026-12-03T16:00:00+00:00,-3.0\n"
        + "beta,2026-12-03T16:00:00+00:00,22.25\n"
    )
    assert f"Wrote 4 rows to {path}" in summary


def test_it_writes_times_as_isoformat_and_values_as_repr(tmp_path):
    sensor = make_sensor(slug="s1")
    at = datetime(2026, 12, 3, 16, 0, 0, 123456, tzinfo=UTC)
    values = [20.0, 0.1 + 0.2, 1e-05, 123456.789, -0.0, 1e16]
    make_readings(sensor, values, end=at, step=timedelta(seconds=1))
    path = tmp_path / "readings.csv"
    export(path)
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    times = [at - timedelta(seconds=len(values) - 1 - i) for i in range(len(values))]
    assert rows == [["s1", t.isoformat(), repr(v)] for t, v in zip(times, values)]
    assert rows[-1][1] == "2026-12-03T16:00:00.123456+00:00"


def test_it_writes_a_header_only_file_when_there_are_no_readings(tmp_path):
    path = tmp_path / "readings.csv"
    assert "Wrote 0 rows" in export(path)
    assert path.read_text() == HEADER


def test_it_creates_parent_directories_and_leaves_no_temporary_file(tmp_path, two_sensors):
    path = tmp_path / "data" / "exports" / "readings.csv"
    export(path)
    assert path.read_text().startswith(HEADER)
    assert [p.name for p in path.parent.iterdir()] == ["readings.csv"]


def test_it_exports_only_the_requested_sensors(tmp_path, two_sensors):
    gamma = make_sensor(slug="gamma")
    make_readings(gamma, [7.0], end=END)
    path = tmp_path / "readings.csv"
    export(path, "--sensor", "gamma")
    assert path.read_text() == HEADER + "gamma,2026-12-03T16:00:00+00:00,7.0\n"
    export(path, "--sensor", "gamma,alpha", "--sensor", "alpha")
    assert [line.split(",")[0] for line in path.read_text().splitlines()[1:]] == ["alpha", "alpha", "gamma"]


def test_it_rejects_unknown_sensors_and_names_them(tmp_path, two_sensors):
    path = tmp_path / "readings.csv"
    with pytest.raises(CommandError, match="unknown sensor.*nope-1, nope-2"):
        export(path, "--sensor", "alpha,nope-2", "--sensor", "nope-1")
    assert not path.exists()


def test_it_exports_readings_at_or_after_since(tmp_path, two_sensors):
    path = tmp_path / "readings.csv"
    export(path, "--since", "2026-12-03T16:00:00Z")
    assert path.read_text() == (
        HEADER + "alpha,2026-12-03T16:00:00+00:00,-3.0\n" + "beta,2026-12-03T16:00:00+00:00,22.25\n"
    )
    export(path, "--since", "2026-12-03T16:59:00+01:00")  # 15:59 UTC
    assert len(path.read_text().splitlines()) == 5


def test_it_rejects_a_since_without_utc_offset(tmp_path):
    with pytest.raises(CommandError, match="add Z"):
        export(tmp_path / "readings.csv", "--since", "2026-12-03T16:00:00")
    with pytest.raises(CommandError, match="not an ISO 8601 time"):
        export(tmp_path / "readings.csv", "--since", "yesterday")


def test_it_appends_only_newer_readings_when_incremental(tmp_path, two_sensors):
    alpha, beta = two_sensors
    path = tmp_path / "readings.csv"
    export(path)
    before = path.read_bytes()
    make_readings(alpha, [1.5, 2.5], end=END + timedelta(minutes=2))
    make_readings(beta, [30.0], end=END + timedelta(minutes=2))

    summary = export(path, "--incremental")

    assert f"Appended 3 rows to {path}" in summary
    assert path.read_bytes() == before + (
        b"alpha,2026-12-03T16:01:00+00:00,1.5\n"
        b"alpha,2026-12-03T16:02:00+00:00,2.5\n"
        b"beta,2026-12-03T16:02:00+00:00,30.0\n"
    )
    after = path.read_bytes()
    assert "Appended 0 rows" in export(path, "--incremental")
    assert path.read_bytes() == after


def test_it_appends_everything_to_a_header_only_file_when_incremental(tmp_path, two_sensors):
    path = tmp_path / "readings.csv"
    path.write_text(HEADER)
    export(path, "--incremental")
    full = tmp_path / "full.csv"
    export(full)
    assert path.read_bytes() == full.read_bytes()


def test_it_writes_a_full_export_when_incremental_and_the_file_is_missing(tmp_path, two_sensors):
    path, full = tmp_path / "readings.csv", tmp_path / "full.csv"
    assert "Wrote 4 rows" in export(path, "--incremental")
    export(full)
    assert path.read_bytes() == full.read_bytes()


def test_it_refuses_to_append_to_a_file_that_is_not_an_export(tmp_path):
    path = tmp_path / "readings.csv"
    path.write_text("something,else\n")
    with pytest.raises(CommandError, match="header"):
        export(path, "--incremental")
    path.write_text(HEADER + "alpha,2026-12-03T16:00")
    with pytest.raises(CommandError, match="incomplete line"):
        export(path, "--incremental")


def test_it_gives_byte_identical_files_when_run_twice(tmp_path, two_sensors):
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    export(first)
    export(second)
    assert first.read_bytes() == second.read_bytes()


def test_it_keeps_the_previous_file_when_an_export_fails(tmp_path, two_sensors, monkeypatch):
    path = tmp_path / "readings.csv"
    export(path)
    before = path.read_bytes()

    def fail_midway(self, query, out):
        out.write(b"alpha,2026-12-03T16:0")
        raise RuntimeError("connection lost")

    monkeypatch.setattr(export_readings.Command, "copy_rows", fail_midway)
    with pytest.raises(RuntimeError):
        export(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["readings.csv"]
    with pytest.raises(RuntimeError):
        export(path, "--incremental")
    assert path.read_bytes() == before
