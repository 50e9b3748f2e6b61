"""Request bodies to columns: JSON (row or columnar form) and CSV, optionally gzip-encoded.

No per-item serializer: bodies become three plain lists (sensor, time, value) that the ingest service validates in one
pass. Request-level problems raise ``BatchError`` with the HTTP status and a message that says what to do.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from dataclasses import dataclass, field

from django.conf import settings


class BatchError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Columns:
    sensors: list = field(default_factory=list)
    times: list = field(default_factory=list)
    values: list = field(default_factory=list)
    # index -> reason for items that could not even be split into fields (e.g. a CSV row with 2 fields)
    malformed: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)


def decode_body(raw: bytes, content_encoding: str) -> bytes:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise BatchError(415, f"Content-Encoding {content_encoding!r} is not supported; send gzip or no encoding.")
    limit = settings.SENSORHUB_MAX_BODY_BYTES
    try:
        # Bounded decompression: a small gzip bomb must not exhaust memory.
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        body = decompressor.decompress(raw, limit + 1)
        if len(body) > limit or decompressor.unconsumed_tail:
            raise BatchError(413, f"The decompressed body exceeds {limit} bytes; split the batch.")
        if not decompressor.eof:
            raise BatchError(400, "The gzip body is truncated; send the complete file.")
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise BatchError(400, f"The body is not valid gzip ({exc}); compress it with gzip or drop Content-Encoding.")
    return body


def parse(body: bytes, content_type: str) -> Columns:
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in ("application/json", ""):
        columns = _parse_json(body)
    elif media_type in ("text/csv", "application/csv"):
        columns = _parse_csv(body)
    else:
        raise BatchError(415, f"Content-Type {media_type!r} is not supported; use application/json or text/csv.")
    limit = settings.SENSORHUB_MAX_BATCH_READINGS
    if len(columns) > limit:
        raise BatchError(413, f"The batch has {len(columns)} readings; the limit is {limit} per request. Split it.")
    if not len(columns):
        raise BatchError(400, "The batch has no readings.")
    return columns


def _parse_json(body: bytes) -> Columns:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BatchError(400, f"Malformed JSON: {exc}.") from None
    if isinstance(data, list):
        return _rows(data)
    if isinstance(data, dict) and "readings" in data:
        if not isinstance(data["readings"], list):
            raise BatchError(400, '"readings" must be a list of {"sensor", "time", "value"} objects.')
        return _rows(data["readings"])
    if isinstance(data, dict) and {"time", "value"} <= data.keys():
        return _columnar(data)
    raise BatchError(
        400,
        'Expected {"readings": [{"sensor": …, "time": …, "value": …}, …]}, a JSON array of such objects, or the '
        'columnar form {"sensor": "sensor-001" or […], "time": […], "value": […]}.',
    )


def _rows(rows: list) -> Columns:
    columns = Columns()
    sensors, times, values = columns.sensors, columns.times, columns.values
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            sensors.append(row.get("sensor"))
            times.append(row.get("time"))
            values.append(row.get("value", _MISSING))
        else:
            sensors.append(None)
            times.append(None)
            values.append(None)
            columns.malformed[index] = 'each reading must be an object {"sensor", "time", "value"}'
    return columns


def _columnar(data: dict) -> Columns:
    times, values, sensor = data["time"], data["value"], data.get("sensor")
    if not isinstance(times, list) or not isinstance(values, list):
        raise BatchError(400, 'In the columnar form "time" and "value" must be lists of equal length.')
    if len(times) != len(values):
        raise BatchError(400, f'"time" has {len(times)} items but "value" has {len(values)}; they must match.')
    if isinstance(sensor, list):
        if len(sensor) != len(times):
            raise BatchError(400, f'"sensor" has {len(sensor)} items but "time" has {len(times)}; they must match.')
        sensors = sensor
    elif isinstance(sensor, str):
        sensors = [sensor] * len(times)
    else:
        raise BatchError(400, '"sensor" must be a sensor id such as "sensor-001" or a list of them.')
    return Columns(sensors=list(sensors), times=list(times), values=list(values))


def _parse_csv(body: bytes) -> Columns:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchError(400, f"The CSV is not UTF-8 ({exc}).") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise BatchError(400, "The CSV is empty; expected a header line sensor,time,value.") from None
    except csv.Error as exc:
        raise BatchError(400, f"Malformed CSV: {exc}.") from None
    missing = {"sensor", "time", "value"} - set(header)
    if missing:
        raise BatchError(400, f"The CSV header lacks {', '.join(sorted(missing))}; expected sensor,time,value.")
    s_col, t_col, v_col = header.index("sensor"), header.index("time"), header.index("value")
    width = len(header)
    columns = Columns()
    try:
        for index, row in enumerate(reader):
            if len(row) != width:
                columns.sensors.append(None)
                columns.times.append(None)
                columns.values.append(None)
                columns.malformed[index] = f"CSV line {index + 2} has {len(row)} fields; the header has {width}"
                continue
            columns.sensors.append(row[s_col].strip())
            columns.times.append(row[t_col].strip())
            columns.values.append(row[v_col].strip())
    except csv.Error as exc:
        raise BatchError(400, f"Malformed CSV near line {reader.line_num}: {exc}.") from None
    return columns


class _Missing:
    def __repr__(self) -> str:
        return "missing"


_MISSING = _Missing()
MISSING = _MISSING
