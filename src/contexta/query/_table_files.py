"""Tables written to files: Parquet (with pyarrow), CSV and JSON Lines (with the standard library and
orjson, so these two need no optional package).

- **CSV** is RFC 4180 (`\\r\\n` between records, a cell quoted when it holds a comma, a quote or a line
  break), one header row, then one row per table row. It reads back with `pandas.read_csv(path)` as
  the same values: numbers with every digit (`repr`), NaN as `nan`, the infinities as `inf` / `-inf`,
  a missing value as an empty cell, booleans as `true` / `false`, times as ISO-8601 text, `json`
  columns as JSON text. Text is written as captured: this is data for programs, not a spreadsheet
  report, so nothing is prefixed against formulas (reports' CSV is; see `reports/_escaping.py`).
  pandas reads a few strings as missing by default (`NA`, `null`, `None`, ...): pass
  `keep_default_na=False, na_values=[""]` to keep such text.
- **JSON Lines**: one object per row; a NaN or infinite float is the string `"NaN"`, `"Infinity"` or
  `"-Infinity"`, as in the capture log (`contract/_non_finite.py`); times ISO-8601 text; `json`
  columns as JSON values.
- **Parquet**: the Arrow table (`Tabular.to_arrow()`), types as documented in `_frames.py`.

Every file is written beside its target and renamed over it, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from contexta._optional import require_module
from contexta.contract import encode_metric_value
from contexta.errors import ValidationError
from contexta.query._frames import ColumnType, NumberColumn, Tabular, TypedColumn, typed_columns

__all__ = ["TABLE_FORMATS", "TableFormat", "table_format", "write_csv", "write_jsonl", "write_table"]

TableFormat = Literal["parquet", "csv", "jsonl"]
TABLE_FORMATS: tuple[TableFormat, ...] = ("parquet", "csv", "jsonl")
_SUFFIXES: dict[str, TableFormat] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def table_format(path: str | os.PathLike[str], requested: str | None = None) -> TableFormat:
    """`requested` if given, else the format `path`'s suffix names; `ValidationError` when neither
    says."""
    if requested is not None:
        if requested not in TABLE_FORMATS:
            raise ValidationError(
                f"format must be one of {', '.join(TABLE_FORMATS)}, got {requested!r}",
                code="export_format_invalid",
            )
        return requested
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValidationError(
            f"cannot tell the format of {os.fspath(path)!r} from its suffix: give format= "
            f"({', '.join(TABLE_FORMATS)}) or name the file .parquet, .csv or .jsonl",
            code="export_format_invalid",
        )
    return _SUFFIXES[suffix]


def _csv_float(value: Any) -> str:
    return "" if value is None else repr(float(value))


def _csv_text(value: Any) -> str:
    return "" if value is None else str(value)


def _csv_bool(value: Any) -> str:
    return "" if value is None else ("true" if value else "false")


def _json_text(value: Any) -> str:
    return "" if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


_CSV_CELLS: dict[ColumnType, Callable[[Any], str]] = {
    "int64": _csv_text,
    "float64": _csv_float,
    "bool": _csv_bool,
    "string": _csv_text,
    "timestamp": _csv_text,
    "json": _json_text,
}


def _csv_column(column: TypedColumn) -> Iterable[str]:
    values = column.values
    if column.type == "float64" and isinstance(values, NumberColumn) and values.missing is None:
        return map(repr, values.data if values.data.typecode == "d" else map(float, values.data))
    return map(_CSV_CELLS[column.type], values)


def write_csv(table: Tabular, stream: IO[str]) -> None:
    """`table` as CSV on `stream` (opened with `newline=""`)."""
    columns = typed_columns(table)
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow([column.name for column in columns])
    writer.writerows(zip(*(_csv_column(column) for column in columns), strict=True))


def _json_float(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    return value if value - value == 0 else encode_metric_value(value)


def _json_plain(value: Any) -> Any:
    return value


_JSON_VALUES: dict[ColumnType, Callable[[Any], Any]] = {
    "int64": _json_plain,
    "float64": _json_float,
    "bool": _json_plain,
    "string": _json_plain,
    "timestamp": _json_plain,
    "json": _json_plain,
}


def write_jsonl(table: Tabular, stream: IO[bytes]) -> None:
    """`table` as JSON Lines on the binary `stream`, one object per row."""
    columns = typed_columns(table)
    names = [column.name for column in columns]
    values = [map(_JSON_VALUES[column.type], column.values) for column in columns]
    dumps = orjson.dumps
    for row in zip(*values, strict=True):
        stream.write(dumps(dict(zip(names, row, strict=True)), default=str) + b"\n")


def _write_parquet(table: Tabular, path: Path) -> None:
    parquet = require_module("pyarrow.parquet", "writing Parquet", package="pyarrow")
    parquet.write_table(table.to_arrow(), path)


def write_table(table: Tabular, path: str | os.PathLike[str], table_format_name: str | None = None) -> Path:
    """Write `table` to `path` (format given, else from the suffix); returns the path written. The
    file is written beside `path` and renamed over it: whole or not at all."""
    target = Path(path).expanduser()
    chosen = table_format(target, table_format_name)
    if chosen == "parquet":  # before anything is written: a missing pyarrow leaves no file behind
        require_module("pyarrow.parquet", "writing Parquet", package="pyarrow")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        if chosen == "parquet":
            _write_parquet(table, partial)
        elif chosen == "csv":
            with partial.open("w", encoding="utf-8", newline="") as stream:
                write_csv(table, stream)
        else:
            with partial.open("wb") as stream:
                write_jsonl(table, stream)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target
