"""Export readings to CSV, streamed with PostgreSQL COPY so memory stays flat however large the table is."""
import os
from datetime import datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from ingestion.models import Sensor

HEADER = b"sensor,time,value\n"
PROGRESS_EVERY = 1_000_000
TAIL_CHUNK = 4096

# Formatting happens in SQL so the output does not depend on the server's DateStyle, TimeZone or collation.
# time: what Python's datetime.isoformat() gives for a UTC datetime (fraction only when it is not zero).
# value: what Python's repr(float) gives. float8::text is already the shortest round-trip text (PostgreSQL 12+);
# only integral values need the '.0' Python adds, and only below 1e15, where PostgreSQL switches to exponent form.
EXPORT_SQL = """
COPY (
    SELECT slug,
           to_char(utc, 'YYYY-MM-DD"T"HH24:MI:SS')
               || CASE WHEN utc = date_trunc('second', utc) THEN '' ELSE to_char(utc, '.US') END
               || '+00:00',
           CASE WHEN v = trunc(v) AND abs(v) < 1e15::float8 THEN v::text || '.0' ELSE v::text END
    FROM (
        SELECT s.slug, r.time AS at, r.time AT TIME ZONE 'UTC' AS utc, r.value AS v
        FROM ingestion_sensorreading r
        JOIN ingestion_sensor s ON s.id = r.sensor_id
        WHERE {where}
    ) AS readings
    ORDER BY at, slug COLLATE "C"
) TO STDOUT WITH (FORMAT csv)
"""


class Command(BaseCommand):
    help = (
        "Export sensor readings to CSV with the header 'sensor,time,value', ordered by time, then sensor slug. "
        "sensor is the slug; time is ISO 8601 in UTC, e.g. 2026-12-03T16:00:00+00:00, with a .ffffff fraction "
        "only when the microseconds are not zero (exactly Python's datetime.isoformat()); value is the shortest "
        "text that reads back as the same float (Python's repr(), e.g. 21.0, 0.1; values from 1e15 to 1e16 are "
        "written in exponent form, e.g. 1e+15). The same data always gives a byte-identical file."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", required=True, help="CSV file to write; parent directories are created.")
        parser.add_argument(
            "--incremental", action="store_true",
            help="Append only readings newer than the last row already in --output. Readings that arrive later "
                 "for times already exported are not picked up: run a full export for those. Use the same "
                 "--sensor/--since as the run that made the file.",
        )
        parser.add_argument(
            "--sensor", action="append", metavar="SLUG",
            help="Export only this sensor; repeat the option or separate slugs with commas.",
        )
        parser.add_argument(
            "--since", metavar="ISO8601",
            help="Export readings at or after this instant, e.g. 2026-12-01T00:00:00Z (an offset or Z is required).",
        )

    def handle(self, *args, output, incremental, sensor, since, **options):
        path = Path(output)
        sensor_ids = sensor_ids_for(sensor) if sensor else None
        since_at = parse_since(since) if since else None
        if incremental and path.is_file() and path.stat().st_size > 0:
            after = last_exported_time(path)
            rows = self.append(path, export_query(sensor_ids, since_at, after))
            self.stdout.write(f"Appended {rows} rows to {path}")
        else:
            rows = self.write(path, export_query(sensor_ids, since_at, None))
            self.stdout.write(f"Wrote {rows} rows to {path}")

    def write(self, path: Path, query) -> int:
        """Write to a temporary file beside ``path`` and rename it over: an interrupted export leaves no half file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as out:
                out.write(HEADER)
                rows = self.copy_rows(query, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return rows

    def append(self, path: Path, query) -> int:
        with path.open("ab") as out:
            size = out.tell()
            try:
                rows = self.copy_rows(query, out)
                out.flush()
                os.fsync(out.fileno())
            except BaseException:
                # Cut back what this run added, so the last line is still a whole row for the next run.
                out.truncate(size)
                raise
        return rows

    def copy_rows(self, query, out) -> int:
        sql, params = query
        rows, next_report = 0, PROGRESS_EVERY
        with transaction.atomic(), connection.cursor() as cursor:
            # 1 is the default since PostgreSQL 12; a server configured lower would round values.
            cursor.execute("SET LOCAL extra_float_digits = 1")
            with cursor.copy(sql, params) as copy:
                for block in copy:
                    block = bytes(block)
                    out.write(block)
                    rows += block.count(b"\n")
                    if rows >= next_report:
                        self.stderr.write(f"{rows:,} rows so far")
                        next_report += PROGRESS_EVERY
        return rows


def sensor_ids_for(options: list[str]) -> list[int]:
    slugs = {slug.strip() for option in options for slug in option.split(",") if slug.strip()}
    if not slugs:
        raise CommandError("--sensor needs a sensor slug, e.g. --sensor sensor-001")
    ids = dict(Sensor.objects.filter(slug__in=slugs).values_list("slug", "id"))
    if missing := slugs - ids.keys():
        raise CommandError(f"unknown sensor(s): {', '.join(sorted(missing))}")
    return sorted(ids.values())


def parse_since(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since {text!r} is not an ISO 8601 time, e.g. 2026-12-01T00:00:00Z") from None
    if at.tzinfo is None:
        raise CommandError(f"--since {text!r} has no UTC offset: add Z (UTC) or an offset such as +01:00")
    return at


def export_query(sensor_ids: list[int] | None, since: datetime | None, after: datetime | None):
    """The COPY statement and its parameters; psycopg binds them client-side, quoted, as COPY has no server binds."""
    conditions, params = [], {}
    if sensor_ids is not None:
        conditions.append("r.sensor_id = ANY(%(sensor_ids)s)")
        params["sensor_ids"] = sensor_ids
    if since is not None:
        conditions.append("r.time >= %(since)s")
        params["since"] = since
    if after is not None:
        conditions.append("r.time > %(after)s")
        params["after"] = after
    return EXPORT_SQL.format(where=" AND ".join(conditions) or "TRUE"), params


def last_exported_time(path: Path) -> datetime | None:
    """The time of the file's last row, or None when it holds only the header."""
    with path.open("rb") as f:
        if f.read(len(HEADER)) != HEADER:
            raise CommandError(f"{path} does not start with the header {HEADER.decode().strip()!r}; "
                               "refusing to append to it")
        line = last_line(f)
    if line + b"\n" == HEADER:
        return None
    try:
        _, time, _ = line.decode().split(",")
        at = datetime.fromisoformat(time)
        if at.tzinfo is None:
            raise ValueError("no UTC offset")
    except ValueError:
        raise CommandError(f"cannot read the time of the last row of {path}: {line[:200]!r}; "
                           "run a full export (without --incremental)") from None
    return at


def last_line(f) -> bytes:
    """The last line without its newline, read backwards from the end so the file size does not matter."""
    end = f.seek(0, os.SEEK_END)
    f.seek(end - 1)
    if f.read(1) != b"\n":
        raise CommandError(f"{f.name} ends with an incomplete line; run a full export (without --incremental)")
    tail, pos = b"", end - 1
    while pos > 0:
        start = max(0, pos - TAIL_CHUNK)
        f.seek(start)
        tail = f.read(pos - start) + tail
        pos = start
        if (newline := tail.rfind(b"\n")) >= 0:
            return tail[newline + 1:]
    return tail
