"""The physical side of a contract: which Arrow types a Parquet file may hold for each column.

A reader checks every exchange file against this *before* it concatenates anything, because
concatenation hides the evidence: pyarrow takes the first file's schema and casts the rest to it
(text "12.5" becomes the number 12.5), and a column missing from one file comes back as nulls.
The contract's ``coerce=True`` is for a producer's own frames; it is not a licence for a consumer
to accept data of the wrong physical type.

What a reader still accepts (each a lossless widening, never a parse):

============  ===========================================  =====================
contract      accepted Arrow types in a file               read as
============  ===========================================  =====================
int           any signed integer, uint8/16/32              int64
float         float16/32/64, any integer (exact < 2**53)   float64
bool          bool                                         bool
timestamp     timestamp without a timezone, any unit       timestamp[ns]
str           string, large_string, string_view            large_string
(nullable)    ``null`` (a column that is null throughout)  the column's type
============  ===========================================  =====================

Anything else (text in a number column, a timezone-aware timestamp, a missing required column, an
extra column of a strict contract, nulls in a non-nullable column) refuses the file, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.parquet as pq

_Accept = Callable[[pa_arrow.DataType], bool]


@dataclass(frozen=True)
class PhysicalType:
    """One contract dtype's Arrow form: what a file may hold and what it is read as."""

    name: str
    target: pa_arrow.DataType
    accepts: _Accept


def _is_small_unsigned(t: pa_arrow.DataType) -> bool:
    return t in (pa_arrow.uint8(), pa_arrow.uint16(), pa_arrow.uint32())


_INT = PhysicalType(
    "int64",
    pa_arrow.int64(),
    lambda t: pa_arrow.types.is_signed_integer(t) or _is_small_unsigned(t),
)
_FLOAT = PhysicalType(
    "float64",
    pa_arrow.float64(),
    lambda t: pa_arrow.types.is_floating(t) or pa_arrow.types.is_integer(t),
)
_BOOL = PhysicalType("bool", pa_arrow.bool_(), pa_arrow.types.is_boolean)
_TIMESTAMP = PhysicalType(
    "timestamp (naive UTC)",
    pa_arrow.timestamp("ns"),
    lambda t: pa_arrow.types.is_timestamp(t) and t.tz is None,
)
_STRING = PhysicalType(
    "string",
    pa_arrow.large_string(),
    lambda t: (
        pa_arrow.types.is_string(t)
        or pa_arrow.types.is_large_string(t)
        or pa_arrow.types.is_string_view(t)
    ),
)


def physical_type(dtype: object) -> PhysicalType:
    """The physical form of a pandera column dtype (``int64``, ``datetime64[ns]``, ``str`` ...)."""
    name = str(dtype)
    if name.startswith("int"):
        return _INT
    if name.startswith("float"):
        return _FLOAT
    if name == "bool":
        return _BOOL
    if name.startswith("datetime64"):
        return _TIMESTAMP
    if name.startswith(("str", "string")):
        return _STRING
    raise TypeError(f"No physical type is defined for contract dtype {name!r}.")


def describe(t: pa_arrow.DataType) -> str:
    """An Arrow type as a person reads it (``string`` for both Arrow string types)."""
    if pa_arrow.types.is_large_string(t) or pa_arrow.types.is_string_view(t):
        return "string"
    return str(t)


@dataclass(frozen=True)
class PhysicalContract:
    """The Arrow-level expectations of one pandera contract."""

    name: str
    columns: dict[str, tuple[PhysicalType, bool, bool]]  # name -> (type, required, nullable)
    strict: bool

    @classmethod
    def of(cls, model: type[pa.DataFrameModel]) -> PhysicalContract:
        schema = model.to_schema()
        return cls(
            name=schema.name or model.__name__,
            columns={
                name: (physical_type(col.dtype), col.required, col.nullable)
                for name, col in schema.columns.items()
            },
            strict=bool(schema.strict),
        )

    def target_schema(self, present: list[str]) -> pa_arrow.Schema:
        """What a file with the ``present`` contract columns is read as, in contract order."""
        return pa_arrow.schema(
            [(name, kind.target) for name, (kind, _, _) in self.columns.items() if name in present]
        )

    def problems(self, parquet: pq.ParquetFile) -> list[str]:
        """Every way the file's physical schema breaks the contract; empty when it fits."""
        return self.problems_in(parquet.schema_arrow, lambda column: _null_count(parquet, column))

    def problems_in(self, schema: pa_arrow.Schema, null_count: Callable[[str], int]) -> list[str]:
        """Every way an Arrow schema (and its data's ``null_count`` per column) breaks the
        contract; empty when it fits."""
        found = {field.name: field.type for field in schema}
        out: list[str] = []
        missing = [n for n, (_, required, _) in self.columns.items() if required and n not in found]
        if missing:
            out.append(f"missing column(s): {', '.join(missing)}")
        if self.strict:
            extra = [n for n in found if n not in self.columns]
            if extra:
                out.append(f"unexpected column(s) (the contract is strict): {', '.join(extra)}")
        for name, (kind, _, nullable) in self.columns.items():
            if name not in found:
                continue
            actual = found[name]
            if pa_arrow.types.is_null(actual) and nullable:
                continue
            if not kind.accepts(actual):
                out.append(f"column '{name}' is {describe(actual)}, expected {kind.name}")
            elif not nullable:
                nulls = null_count(name)
                if nulls:
                    out.append(f"column '{name}' holds {nulls} null(s), the contract forbids nulls")
        return out


def _null_count(parquet: pq.ParquetFile, column: str) -> int:
    """Nulls in ``column``, from the row-group statistics, or by reading it where they lack."""
    meta = parquet.metadata
    index = parquet.schema_arrow.get_field_index(column)
    total = 0
    for rg in range(meta.num_row_groups):
        stats = meta.row_group(rg).column(index).statistics
        if stats is None or not stats.has_null_count:
            return parquet.read(columns=[column]).column(0).null_count
        total += stats.null_count
    return total
