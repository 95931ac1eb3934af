"""A contract compiled for small frames: the same checks as pandera, without its fixed cost.

pandera costs ~15 ms per call whatever the size of the frame, which is fine for a batch and far too
slow for one online request. :class:`FastContract` reads a contract's columns, types and checks
once, then validates a frame with plain numpy/pandas operations (well under a millisecond for one
row). The contract stays the single source of truth:

* only the checks pandera itself would run are run, from the contract's own schema;
* when the fast path finds a problem, or meets anything it does not know how to check, it hands the
  frame to pandera (:func:`shared_runtime.enforce.enforce`), so errors are pandera's, grouped by
  check, and the fast path can never be more lenient than the contract. Tests compare both on
  random inputs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa

from shared_runtime.enforce import enforce


def _str_matches(pattern: str) -> Callable[[np.ndarray], np.ndarray]:
    match = re.compile(pattern).match  # pandera's str_matches is re.match (anchored at the start)
    return lambda v: np.fromiter((match(x) is not None for x in v), bool, len(v))


def _isin(allowed_values: tuple) -> Callable[[np.ndarray], np.ndarray]:
    allowed = frozenset(allowed_values)
    return lambda v: np.fromiter((x in allowed for x in v), bool, len(v))


# pandera's built-in checks, by name, as vectorised predicates over the non-null values.
_BUILTINS: dict[str, Callable[..., Callable[[np.ndarray], np.ndarray]]] = {
    "greater_than_or_equal_to": lambda min_value: lambda v: v >= min_value,
    "greater_than": lambda min_value: lambda v: v > min_value,
    "less_than_or_equal_to": lambda max_value: lambda v: v <= max_value,
    "less_than": lambda max_value: lambda v: v < max_value,
    "equal_to": lambda value: lambda v: v == value,
    "not_equal_to": lambda value: lambda v: v != value,
    "isin": _isin,
    "notin": lambda forbidden_values: lambda v: ~_isin(forbidden_values)(v),
    "str_matches": _str_matches,
}


@dataclass(frozen=True)
class _Column:
    name: str
    dtype: object  # a pandera DataType
    nullable: bool
    unique: bool
    checks: tuple[Callable[[np.ndarray], np.ndarray], ...]


class UnsupportedContract(TypeError):
    """The contract uses a feature the fast path does not implement; use pandera for it."""


class FastContract:
    """Validate (and coerce) frames against ``model`` with pandera's semantics, fast.

    >>> fast = FastContract(TransactionInstance)
    >>> fast.validate(frame)  # the coerced frame, or ContractViolation naming the failed checks
    """

    def __init__(self, model: type[pa.DataFrameModel]) -> None:
        schema = model.to_schema()
        if not schema.strict or schema.unique or schema.index is not None or schema.ordered:
            raise UnsupportedContract(f"{model.__name__}: only strict, unordered, index-free")
        self.model = model
        self._by_name = {name: _compile_column(name, col) for name, col in schema.columns.items()}
        self._frame_checks = tuple(_frame_check(model, check) for check in schema.checks)

    def validate(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` coerced to the contract's types; raises ContractViolation like ``enforce``."""
        coerced = self._fast(df)
        return coerced if coerced is not None else enforce(df, self.model)

    def _fast(self, df: pd.DataFrame) -> pd.DataFrame | None:
        """The coerced frame if every check passes, else None (pandera then explains why)."""
        if len(df.columns) != len(self._by_name) or set(df.columns) != self._by_name.keys():
            return None
        coerced = {}
        try:
            for i, (name, dtype) in enumerate(zip(df.columns, df.dtypes, strict=True)):
                col = self._by_name[name]
                if dtype == col.dtype.type:
                    values = _column_array(df, i)
                else:
                    coerced[name] = col.dtype.coerce(df.iloc[:, i])
                    values = coerced[name].to_numpy()
                if not _column_ok(np.asarray(values), col):
                    return None
        except (TypeError, ValueError, OverflowError, pandera.errors.ParserError):
            return None  # pandera reports the coercion failure with the rows concerned
        frame = df.assign(**coerced) if coerced else df
        if not all(bool(check(frame).all()) for check in self._frame_checks):
            return None
        return frame


def _compile_column(name: str, col: pa.Column) -> _Column:
    checks = []
    for check in col.checks:
        if check.name not in _BUILTINS or check.statistics is None:
            raise UnsupportedContract(f"column {name}: check {check.name}")
        checks.append(_BUILTINS[check.name](**check.statistics))
    if col.regex:
        raise UnsupportedContract(f"column {name}: regex column names")
    return _Column(name, col.dtype, col.nullable, col.unique, tuple(checks))


def _frame_check(model: type[pa.DataFrameModel], check: pa.Check) -> Callable:
    """A dataframe-level check (a row rule) as a function of the frame returning a bool Series."""
    fn = getattr(check, "_check_fn", None)
    if fn is None or check.element_wise or check.groupby is not None:
        raise UnsupportedContract(f"{model.__name__}: dataframe check {check.name}")
    return fn


def _column_array(df: pd.DataFrame, i: int) -> object:
    """Column ``i``'s values without building a Series (a Series costs ~10 us per column)."""
    try:
        return df._get_column_array(i)  # private, but the public equivalent is 15x slower
    except AttributeError:  # a future pandas without it: same result, slower
        return df.iloc[:, i].to_numpy()


def _column_ok(values: np.ndarray, col: _Column) -> bool:
    if values.dtype.kind not in "biu":
        nulls = pd.isna(values)
        if nulls.any():
            if not col.nullable:
                return False
            values = values[~nulls]
    if col.unique and len(values) > 1 and len(pd.unique(values)) != len(values):
        return False
    return all(bool(np.all(check(values))) for check in col.checks)
