"""Registers as spreadsheets: CSV with a header row, served as an attachment, safe to open in Excel.

Shared by the disclosure log and the custody log view so both read the same way:
times in UTC ISO 8601, lists joined with ``; ``, mappings as compact JSON, and a
cell that a spreadsheet would run as a formula (CSV injection: ``=``, ``+``,
``-``, ``@``, tab, carriage return) prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from fastapi import Response

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, list | tuple):
        value = "; ".join(str(v) for v in value)
    elif isinstance(value, Mapping):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def attachment(text: str, stem: str) -> Response:
    """The CSV as a download named ``<stem>-<UTC timestamp>.csv``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        text,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{stem}-{stamp}.csv"'},
    )
