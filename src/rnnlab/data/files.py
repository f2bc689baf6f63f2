"""Reading the user's files: tables (CSV, TSV, JSON Lines), plain text and JSON, with one-line errors.

Every problem a user can cause raises :class:`rnnlab.errors.InputError` naming the file, what was expected and
what came: a missing or empty file, bytes that are not valid in the encoding tried (UTF-8 unless told), a
malformed row, a missing column (with the columns that exist), a non-numeric value in a numeric column (with
the first bad data row, counted from 1 after the header).

Tables come back as :class:`pandas.DataFrame` of strings (CSV/TSV) or of JSON values (JSON Lines), with the
numeric columns converted to ``float64``; an empty cell or a missing marker (``NA``, ``N/A``, ``nan``,
``null``, ``None``, case-insensitive) becomes ``NaN`` there and ``""`` in text columns, and the caller decides
what a gap means.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rnnlab.errors import InputError

TABLE_FORMATS = ("csv", "tsv", "jsonl")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none"})


def read_text(path: str | Path, *, encoding: str = "utf-8") -> str:
    """The whole text of ``path``; a file that is missing, empty or only whitespace raises InputError.

    A UTF-8 byte-order mark is dropped; line endings are normalised to ``"\\n"``.
    """
    text = _read_decoded(path, encoding)
    if not text.strip():
        raise InputError(f"{Path(path).name} contains only whitespace; expected some text")
    return text


def read_json(path: str | Path, *, encoding: str = "utf-8") -> Any:
    """The parsed JSON value in ``path``; invalid JSON raises InputError with its line and column."""
    text = _read_decoded(path, encoding)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{Path(path).name} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None


def read_table(
    path: str | Path,
    *,
    columns: Sequence[str] = (),
    numeric: Sequence[str] = (),
    format: str | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a CSV, TSV or JSON Lines table with a header (CSV/TSV) or one JSON object per line.

    Args:
        path: the file.
        columns: columns that must exist (InputError names the ones that do otherwise).
        numeric: columns (a subset of, or in addition to, ``columns``) converted to ``float64``; gaps become NaN,
            any other non-numeric value raises InputError naming the column, the value and its data row.
        format: ``"csv"``, ``"tsv"`` or ``"jsonl"``; by default from the extension (``.csv``, ``.tsv``/``.tab``,
            ``.jsonl``/``.ndjson``), else sniffed from the content (a first line starting with ``{`` is JSON
            Lines; otherwise the delimiter among ``, \\t ; |`` is guessed).
        encoding: the text encoding tried (UTF-8 by default).

    Returns:
        a DataFrame with ``n_rows >= 1`` rows, in file order, index ``0..n_rows-1``.
    """
    name = Path(path).name
    text = _read_decoded(path, encoding)
    if not text.strip():
        raise InputError(f"{name} contains only whitespace; expected a table with a header and rows")
    fmt, delimiter = _table_format(path, text, format)
    frame = _parse_jsonl(text, name) if fmt == "jsonl" else _parse_delimited(text, name, fmt, delimiter)
    if len(frame) == 0:
        raise InputError(f"{name} has a header but no data rows")
    require_columns(frame, [*columns, *numeric], name)
    for column in numeric:
        frame[column] = to_numeric(frame[column], column, name)
    return frame


def require_columns(frame: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    """Raise InputError if a column in ``columns`` is not in ``frame``, listing the columns that are."""
    for column in columns:
        if column not in frame.columns:
            existing = ", ".join(str(c) for c in frame.columns)
            raise InputError(f"column '{column}' not found in {source}; columns are: {existing}")


def to_numeric(values: pd.Series, column: str, source: str) -> pd.Series:
    """``values`` as float64 with gaps (see :data:`MISSING_MARKERS`) as NaN.

    Raises InputError at the first value that is neither a number nor a gap, naming its data row (from 1).
    """
    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values.tolist()):
        out[row] = _number(value, column, row, source)
    return pd.Series(out, index=values.index, name=values.name)


def time_in_seconds(column: pd.Series, name: str, source: str) -> np.ndarray:
    """A time column as float seconds: numbers as they are, else parsed dates (seconds since the epoch, UTC).

    Raises InputError at the first empty value, or at the first value that is neither a number nor a date.
    """
    values = column.tolist()
    for row, value in enumerate(values):
        if is_missing(value):
            raise InputError(f"time column '{name}' of {source} is empty at data row {row + 1}")
    try:
        return to_numeric(column, name, source).to_numpy()
    except InputError:
        pass
    parsed = pd.to_datetime(pd.Series([str(v) for v in values]), errors="coerce", format="mixed", utc=True)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise InputError(f"time column '{name}' of {source} must hold numbers or dates; found {values[bad[0]]!r} "
                         f"at data row {bad[0] + 1}")
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64) / 1e9


def is_missing(value: Any) -> bool:
    """True for a gap: None, NaN, or a string in :data:`MISSING_MARKERS` (after stripping, any case)."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip().lower() in MISSING_MARKERS
    return False


def _number(value: Any, column: str, row: int, source: str) -> float:
    if is_missing(value):
        return math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        number = float(str(value).strip())
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return number
    raise InputError(
        f"column '{column}' of {source} must be numeric; found {value!r} at data row {row + 1}"
    )


def _read_decoded(path: str | Path, encoding: str) -> str:
    path = Path(path)
    if not path.exists():
        raise InputError(f"file not found: {path}")
    if not path.is_file():
        raise InputError(f"expected a file, got a directory: {path}")
    raw = path.read_bytes()
    if not raw:
        raise InputError(f"{path.name} is empty (0 bytes)")
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as err:
        bad = raw[err.start : err.start + 1].hex()
        raise InputError(
            f"cannot read {path.name} as {encoding.upper()}: byte 0x{bad} at offset {err.start} is invalid; "
            f"convert it to {encoding.upper()} first (for example: iconv -f LATIN1 -t {encoding.upper()} "
            f"{path.name} > converted{path.suffix})"
        ) from None
    except LookupError:
        raise InputError(f"unknown text encoding {encoding!r} for {path.name}") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _table_format(path: str | Path, text: str, format: str | None) -> tuple[str, str]:
    """(format name, delimiter) of a table: from ``format``, else the extension, else the content."""
    delimiters = {"csv": ",", "tsv": "\t", "jsonl": ""}
    if format is not None:
        if format not in TABLE_FORMATS:
            raise InputError(f"table format must be one of {', '.join(TABLE_FORMATS)}; got {format!r}")
        return format, delimiters[format]
    by_extension = _EXTENSIONS.get(Path(path).suffix.lower())
    if by_extension:
        return by_extension, delimiters[by_extension]
    if text.lstrip().startswith("{"):
        return "jsonl", ""
    first_lines = "\n".join(text.lstrip("\n").split("\n")[:20])
    try:
        delimiter = csv.Sniffer().sniff(first_lines, delimiters=",\t;|").delimiter
    except csv.Error:
        delimiter = ","
    return ("tsv" if delimiter == "\t" else "csv"), delimiter


def _parse_delimited(text: str, name: str, fmt: str, delimiter: str) -> pd.DataFrame:
    try:
        return pd.read_csv(
            io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, skip_blank_lines=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        message = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot parse {name} as {fmt.upper()}: {message}") from None


def _parse_jsonl(text: str, name: str) -> pd.DataFrame:
    records = []
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"line {line_number} of {name} is not valid JSON: {err.msg}") from None
        if not isinstance(record, dict):
            raise InputError(
                f"line {line_number} of {name} must be a JSON object {{\"column\": value, ...}}; "
                f"got {type(record).__name__}"
            )
        records.append(record)
    return pd.DataFrame.from_records(records)
