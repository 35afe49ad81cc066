"""Read models as tidy tables: one row per run, per point or per sample, typed the same every time.

A model that can be a table implements `table_columns()` (ordered column name -> values, every column
as long as the others) and inherits `Tabular`, which turns those columns into a pyarrow Table, a
pandas or polars DataFrame, a file (Parquet, CSV, JSON Lines) or a notebook table. The conversions
live in their own modules (`_arrow.py`, `_table_files.py`) and pyarrow, pandas and polars are imported
only when one is asked for: capture and `import contexta.query` never pay for them.

Column types are explicit and stable, so a notebook or a pipeline reading an export does not change
shape when a run happens to hold other values:

- `int64`: steps, counts (a missing value is null);
- `float64`: metric values, always (an int metric too), with NaN and the infinities kept as such;
- `bool`, `string`;
- `timestamp`: instants in microseconds, UTC (`timestamp[us, tz=UTC]` in Arrow and Parquet; pandas
  `datetime64[us, UTC]`; in CSV and JSON Lines the contract's ISO-8601 text, `...T03:04:05.123456Z`);
- `json`: mappings and lists (tags, failures), as canonical JSON text (in JSON Lines, as JSON itself).

A model declares its columns' types in `column_types()`; a column it leaves out is inferred from its
values (see `infer_type`). Long columns may be held as machine numbers (`NumberColumn`,
`TimeColumn`, `CodedColumn`), which read as Python values one at a time and convert to Arrow without
a Python object per row: a million-point series is exported from its arrays.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, overload

from contexta.contract._timestamps import format_ns, parse_timestamp
from contexta.errors import ValidationError

if TYPE_CHECKING:
    from pathlib import Path

    import pandas
    import polars
    import pyarrow

__all__ = [
    "COLUMN_TYPES",
    "CodedColumn",
    "ColumnType",
    "NumberColumn",
    "StackedTable",
    "Tabular",
    "TimeColumn",
    "TypedColumn",
    "infer_type",
    "stack_tables",
    "typed_columns",
]

ColumnType = Literal["int64", "float64", "bool", "string", "timestamp", "json"]
COLUMN_TYPES: tuple[ColumnType, ...] = ("int64", "float64", "bool", "string", "timestamp", "json")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class NumberColumn(Sequence[Any]):
    """Numbers held in an array (`q`: int64, `d`: float64), read as Python numbers; a value equal to
    `missing` (a step's NO_STEP) reads as None."""

    __slots__ = ("data", "missing")

    def __init__(self, data: array[Any], missing: int | None = None):
        self.data = data
        self.missing = missing

    @property
    def column_type(self) -> ColumnType:
        return "float64" if self.data.typecode in "fd" else "int64"

    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._read(value) for value in self.data[index]]
        return self._read(self.data[index])

    def _read(self, value: Any) -> Any:
        return None if self.missing is not None and value == self.missing else value

    def __iter__(self) -> Iterator[Any]:
        if self.missing is None:
            return iter(self.data)
        return map(self._read, self.data)


class TimeColumn(Sequence[str]):
    """Instants held as epoch nanoseconds, read as contract timestamps (`2026-01-02T03:04:05.123456Z`)."""

    __slots__ = ("data",)

    column_type: ColumnType = "timestamp"

    def __init__(self, data: array[int]):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [format_ns(value) for value in self.data[index]]
        return format_ns(self.data[index])

    def __iter__(self) -> Iterator[str]:
        return map(format_ns, self.data)


class CodedColumn(Sequence[str | None]):
    """Text that repeats down a column (a run id, a metric key) held once: row i reads
    `labels[codes[i]]`."""

    __slots__ = ("codes", "labels")

    column_type: ColumnType = "string"

    def __init__(self, codes: array[int], labels: Sequence[str | None]):
        self.codes = codes
        self.labels = tuple(labels)

    @classmethod
    def repeated(cls, label: str | None, count: int) -> CodedColumn:
        """`label` on every one of `count` rows."""
        return cls(array("i", [0]) * count, (label,))

    def __len__(self) -> int:
        return len(self.codes)

    @overload
    def __getitem__(self, index: int) -> str | None: ...
    @overload
    def __getitem__(self, index: slice) -> list[str | None]: ...
    def __getitem__(self, index: int | slice) -> str | list[str | None] | None:
        if isinstance(index, slice):
            return [self.labels[code] for code in self.codes[index]]
        return self.labels[self.codes[index]]

    def __iter__(self) -> Iterator[str | None]:
        return map(self.labels.__getitem__, self.codes)


class TypedColumn(NamedTuple):
    """A table's column with its type settled."""

    name: str
    type: ColumnType
    values: Sequence[Any]


def _is_timestamp(value: str) -> bool:
    try:
        parse_timestamp(value)
    except ValidationError:
        return False
    return True


def infer_type(name: str, values: Sequence[Any]) -> ColumnType:
    """The type of a column its model did not declare, from its values (None is a missing value):
    all bools `bool`; all ints in int64 range `int64`; ints and floats `float64`; strings `string`,
    or `timestamp` when the column's name ends in `_at` and every one is a contract timestamp;
    anything else (mappings, lists, a mix) `json`. A column of None only is `string`."""
    kinds = {type(value) for value in values if value is not None}
    if not kinds or kinds == {str}:
        if (
            kinds
            and name.endswith("_at")
            and all(_is_timestamp(value) for value in values if value is not None)
        ):
            return "timestamp"
        return "string"
    if kinds == {bool}:
        return "bool"
    if kinds == {int}:
        in_range = all(_INT64_MIN <= value <= _INT64_MAX for value in values if value is not None)
        return "int64" if in_range else "json"
    if kinds <= {int, float}:
        return "float64"
    return "json"


def typed_columns(table: Tabular) -> list[TypedColumn]:
    """`table`'s columns with their types: declared, carried by the column, or inferred; every column
    must be as long as the first (`ValidationError(table_columns_ragged)` otherwise)."""
    columns = table.table_columns()
    declared = table.column_types()
    unknown = sorted(set(declared) - set(columns))
    if unknown:
        raise ValidationError(
            f"{type(table).__name__}.column_types() names columns the table does not have: "
            f"{', '.join(unknown)}",
            code="table_columns_invalid",
        )
    typed = []
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValidationError(
            f"{type(table).__name__}.table_columns() gave columns of different lengths: {lengths}; "
            "every column needs one value per row",
            code="table_columns_ragged",
        )
    for name, values in columns.items():
        column_type = declared.get(name) or getattr(values, "column_type", None) or infer_type(name, values)
        if column_type not in COLUMN_TYPES:
            raise ValidationError(
                f"column {name!r} has type {column_type!r}; use one of {', '.join(COLUMN_TYPES)}",
                code="table_columns_invalid",
            )
        typed.append(TypedColumn(name, column_type, values))
    return typed


class Tabular:
    """A read model that is a tidy table. Subclasses implement `table_columns()` and may declare
    types in `column_types()`; everything else comes from here."""

    __slots__ = ()

    def table_columns(self) -> Mapping[str, Sequence[Any]]:
        """Column name -> values, in column order; one value per row in every column."""
        raise NotImplementedError(f"{type(self).__name__} does not implement table_columns()")

    def column_types(self) -> Mapping[str, ColumnType]:
        """The types of the columns that should not be inferred from their values (see `infer_type`)."""
        return {}

    @property
    def row_count(self) -> int:
        """How many rows the table has."""
        columns = self.table_columns()
        return len(next(iter(columns.values()))) if columns else 0

    def to_arrow(self) -> pyarrow.Table:
        """The table as a `pyarrow.Table` with the types in this module's docstring (needs pyarrow:
        `pip install 'contexta[export]'`)."""
        from contexta.query._arrow import arrow_table

        return arrow_table(typed_columns(self))

    def to_pandas(self) -> pandas.DataFrame:
        """The table as a pandas DataFrame: `float64` values, `Int64` (nullable) integers,
        `datetime64[us, UTC]` times, text as strings (needs pandas and pyarrow)."""
        from contexta.query._arrow import pandas_frame

        return pandas_frame(self.to_arrow())

    def to_polars(self) -> polars.DataFrame:
        """The table as a polars DataFrame (needs polars and pyarrow)."""
        from contexta.query._arrow import polars_frame

        return polars_frame(self.to_arrow())

    def write(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write the table to `path` as Parquet, CSV or JSON Lines (`format`, else `path`'s suffix:
        `.parquet`, `.csv`, `.jsonl`); returns the path written. The file appears whole or not at all.
        CSV and JSON Lines need no optional package; Parquet needs pyarrow."""
        from contexta.query._table_files import write_table

        return write_table(self, path, format)

    def _repr_html_(self) -> str:
        """Jupyter's rendering: the first rows as an HTML table, with how many there are (drawn by
        `contexta.reports`, imported here so that queries do not load it)."""
        from contexta.reports import notebook_table_html

        return notebook_table_html(self)


class StackedTable(Tabular):
    """Tables with the same columns, one under the other (the points of several runs)."""

    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[Tabular]):
        self.parts = tuple(parts)

    def table_columns(self) -> Mapping[str, Sequence[Any]]:
        columns = [part.table_columns() for part in self.parts]
        if not columns:
            return {}
        names = list(columns[0])
        for part, part_columns in zip(self.parts, columns, strict=True):
            if list(part_columns) != names:
                raise ValidationError(
                    f"cannot stack a {type(part).__name__} with columns {list(part_columns)} under "
                    f"columns {names}",
                    code="table_columns_invalid",
                )
        return {name: _stack([part[name] for part in columns]) for name in names}

    def column_types(self) -> Mapping[str, ColumnType]:
        return self.parts[0].column_types() if self.parts else {}


def stack_tables(parts: Sequence[Tabular]) -> StackedTable:
    """`parts` one under the other, as one table; they must have the same columns."""
    return StackedTable(parts)


def _stack(columns: list[Sequence[Any]]) -> Sequence[Any]:
    """One column of several tables, kept as machine numbers where every part is."""
    if len(columns) == 1:
        return columns[0]
    numbers = [column for column in columns if isinstance(column, NumberColumn)]
    if len(numbers) == len(columns) and len({part.missing for part in numbers}) == 1:
        # Ints under floats (an int metric's series under a float one) are floats, as in a list.
        typecodes = {part.data.typecode for part in numbers}
        data = [part.data if len(typecodes) == 1 else array("d", part.data) for part in numbers]
        return NumberColumn(_joined(data), numbers[0].missing)
    times = [column for column in columns if isinstance(column, TimeColumn)]
    if len(times) == len(columns):
        return TimeColumn(_joined([part.data for part in times]))
    coded = [column for column in columns if isinstance(column, CodedColumn)]
    if len(coded) == len(columns):
        return _stack_coded(coded)
    return list(chain.from_iterable(columns))


def _joined(arrays: list[array[Any]]) -> array[Any]:
    joined = array(arrays[0].typecode)
    for part in arrays:
        joined.extend(part)
    return joined


def _stack_coded(columns: list[CodedColumn]) -> CodedColumn:
    labels: list[str | None] = []
    codes = array("i")
    for column in columns:
        offset = len(labels)
        labels.extend(column.labels)
        codes.extend(array("i", [code + offset for code in column.codes]) if offset else column.codes)
    return CodedColumn(codes, labels)
