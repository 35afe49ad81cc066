"""Typed columns (`_frames.py`) as a pyarrow Table, and that Table as pandas or polars.

pyarrow is untyped, so it is used in this module only, behind functions typed at the edge. Columns
held as machine numbers become Arrow arrays from their buffers, with no Python object per row (a
million-point series converts in milliseconds); lists of Python values go through `pyarrow.array`
with the column's type given, so an empty or all-null column still has its type.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from contexta._optional import require_module
from contexta.query._frames import CodedColumn, ColumnType, NumberColumn, TimeColumn, TypedColumn

if TYPE_CHECKING:
    import pandas
    import polars
    import pyarrow

__all__ = ["arrow_table", "pandas_frame", "polars_frame"]

_FEATURE = "exporting a table"


def _pyarrow() -> Any:
    return require_module("pyarrow", _FEATURE)


def _compute() -> Any:
    return require_module("pyarrow.compute", _FEATURE, package="pyarrow")


def _arrow_type(column_type: ColumnType) -> Any:
    pa = _pyarrow()
    return {
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "json": pa.string(),
    }[column_type]


def _from_buffer(data: array[Any]) -> Any:
    """An int64 or float64 Arrow array over `data`'s memory (kept alive by the array)."""
    pa = _pyarrow()
    kind = pa.float64() if data.typecode == "d" else pa.int64()
    if data.typecode not in "dq":  # another width: widen once, in C
        data = array("d" if data.typecode == "f" else "q", data)
    return pa.Array.from_buffers(kind, len(data), [None, pa.py_buffer(data)])


def _number_array(column: NumberColumn, column_type: ColumnType) -> Any:
    pa, pc = _pyarrow(), _compute()
    values = _from_buffer(column.data)
    if column.missing is not None:
        absent = pc.equal(values, pa.scalar(column.missing, values.type))
        values = pc.if_else(absent, pa.scalar(None, values.type), values)
    return values.cast(_arrow_type(column_type))


def _time_array(column: TimeColumn) -> Any:
    pa, pc = _pyarrow(), _compute()
    micros = pc.divide(_from_buffer(column.data), pa.scalar(1000, pa.int64()))  # whole microseconds
    return micros.cast(pa.timestamp("us", tz="UTC"))


def _coded_array(column: CodedColumn, column_type: ColumnType) -> Any:
    pa, pc = _pyarrow(), _compute()
    labels = pa.array(column.labels, pa.string())
    codes = pa.Array.from_buffers(pa.int32(), len(column.codes), [None, pa.py_buffer(column.codes)])
    return pc.take(labels, codes).cast(_arrow_type(column_type))


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()


def _list_array(values: Sequence[Any], column_type: ColumnType) -> Any:
    pa = _pyarrow()
    if column_type == "json":
        return pa.array([_json_text(value) for value in values], pa.string())
    if column_type == "timestamp":
        # Contract timestamps (ISO-8601 ending in `Z`) parsed by Arrow; through nanoseconds, since a
        # hand-written one may carry nine decimals, then truncated to whole microseconds.
        nanos = pa.array(list(values), pa.string()).cast(pa.timestamp("ns", tz="UTC"))
        return nanos.cast(pa.timestamp("us", tz="UTC"), safe=False)
    if column_type == "float64":
        return pa.array([None if value is None else float(value) for value in values], pa.float64())
    if column_type == "string":
        return pa.array([None if value is None else str(value) for value in values], pa.string())
    return pa.array(list(values), _arrow_type(column_type))


def _column_array(column: TypedColumn) -> Any:
    values = column.values
    if isinstance(values, NumberColumn) and column.type in ("int64", "float64"):
        return _number_array(values, column.type)
    if isinstance(values, TimeColumn) and column.type == "timestamp":
        return _time_array(values)
    if isinstance(values, CodedColumn) and column.type in ("string", "json"):
        return _coded_array(values, column.type)
    return _list_array(values, column.type)


def arrow_table(columns: Sequence[TypedColumn]) -> pyarrow.Table:
    """The columns as one `pyarrow.Table`, in their order, each of its column's Arrow type."""
    pa = _pyarrow()
    schema = pa.schema([pa.field(column.name, _arrow_type(column.type)) for column in columns])
    return pa.Table.from_arrays([_column_array(column) for column in columns], schema=schema)


def pandas_frame(table: pyarrow.Table) -> pandas.DataFrame:
    """`table` as pandas: integers as nullable `Int64` (a step may be missing: plain int64 would turn
    the column into floats), the rest as pyarrow's default conversion."""
    pd = require_module("pandas", "to_pandas()")
    pa = _pyarrow()
    return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def polars_frame(table: pyarrow.Table) -> polars.DataFrame:
    """`table` as polars (its types map one to one: Int64, Float64, Datetime(us, UTC), String)."""
    pl = require_module("polars", "to_polars()")
    frame = pl.from_arrow(table)
    return frame  # type: ignore[no-any-return]
