"""A contract compiled for small frames: the same checks as pandera, without its fixed cost.

pandera costs ~15 ms per call whatever the size of the frame, which is fine for a batch and far too
slow for one online request. :class:`FastContract` reads a contract's schema once, through
pandera's public API, then validates a frame with plain numpy/pandas operations. The contract
stays the single source of truth:

* the fast path can only *accept*: when it finds a problem, it hands the frame to pandera
  (:func:`shared_runtime.enforce.enforce`), so errors are pandera's, grouped by check, and the
  fast path can never be more lenient than the contract;
* pandera's built-in column checks are compiled to numpy predicates (only when the check *equals*
  the built-in pandera would build from its name and statistics), and for a few rows to the same
  comparisons value by value; every other column check is run at call time by pandera's own
  ``Check`` object, so a contract that gains a check nothing here compiles still works, just less
  fast;
* a row rule (a frame-wide check) is called as pandera's pandas backend calls it, without the
  backend's per-call set-up and post-processing (~0.2 ms for one row); only an output that is
  all True is taken as a pass (pandera would pass it too), anything else is judged by pandera's
  ``Check``;
* a schema feature the fast path does not model (an index, ordered or "filter" columns, defaults,
  parsers, ...) sends every call to pandera;
* types are coerced only where the contract coerces (the schema's or the column's ``coerce``).

``tests/test_fast.py`` proves it equal to pandera (accept/reject, coerced output, failed checks)
on random inputs for every contract it is used with.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.dtypes as pa_dtypes
import pandera.pandas as pa
from pandera.backends.pandas.checks import PandasCheckBackend

from shared_runtime.enforce import enforce

# Below this many rows one object block (DataFrame.to_numpy) is cheaper than a Series per column.
SMALL_FRAME = 32

Predicate = Callable[[np.ndarray], np.ndarray]


def _str_matches(pattern: str) -> Predicate:
    match = re.compile(pattern).match  # pandera's str_matches is re.match (anchored at the start)
    return lambda v: np.fromiter((match(x) is not None for x in v), bool, len(v))


def _isin(allowed_values: tuple) -> Predicate:
    allowed = frozenset(allowed_values)
    return lambda v: np.fromiter((x in allowed for x in v), bool, len(v))


# pandera's built-in checks, by name, as vectorised predicates over the non-null values.
_BUILTINS: dict[str, Callable[..., Predicate]] = {
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


def _scalar_str_matches(pattern: str) -> Callable[[object], bool]:
    match = re.compile(pattern).match
    return lambda x: match(x) is not None


def _scalar_isin(allowed_values: tuple) -> Callable[[object], bool]:
    allowed = frozenset(allowed_values)
    return lambda x: x in allowed


# The same checks over one value, for small frames (a Python comparison per value is cheaper than
# a numpy call per column); the comparisons above already work on one value.
_SCALAR_BUILTINS: dict[str, Callable[..., Callable[[object], object]]] = {
    **_BUILTINS,
    "isin": _scalar_isin,
    "notin": lambda forbidden_values: lambda x: not _scalar_isin(forbidden_values)(x),
    "str_matches": _scalar_str_matches,
}


@dataclass(frozen=True)
class _Column:
    name: str
    dtype: object  # a pandera DataType
    coerce: bool
    nullable: bool
    unique: bool
    compiled: tuple[Predicate, ...]  # built-in checks, over the non-null values
    scalar: tuple[Callable[[object], object], ...]  # the same checks, over one value
    delegated: tuple[pa.Check, ...]  # any other check, run by pandera's Check at call time


class FastContract:
    """Validate (and coerce) frames against ``model`` with pandera's semantics, fast.

    >>> fast = FastContract(TransactionInstance)
    >>> fast.validate(frame)  # the coerced frame, or ContractViolation naming the failed checks
    """

    def __init__(self, model: type[pa.DataFrameModel], small_frame: int = SMALL_FRAME) -> None:
        schema = model.to_schema()
        self.model = model
        self._small_frame = small_frame
        #: why every call goes to pandera (a schema feature the fast path does not model), or None
        self.pandera_only: str | None = _unmodelled(schema)
        self._columns = (
            {}
            if self.pandera_only
            else {
                name: _compile_column(name, col, schema.coerce)
                for name, col in schema.columns.items()
            }
        )
        self._required = frozenset(n for n, col in schema.columns.items() if col.required)
        self._frame_checks = tuple(_compile_frame_check(check) for check in schema.checks)

    def __repr__(self) -> str:
        return f"FastContract({self.model.__name__})"

    def validate(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` coerced to the contract's types; raises ContractViolation like ``enforce``."""
        accepted = self.fast_path(df)
        return accepted if accepted is not None else enforce(df, self.model)

    def fast_path(self, df: pd.DataFrame) -> pd.DataFrame | None:
        """The validated (coerced) frame if every check passes without pandera's machinery, else
        None: a problem, or something only pandera can judge (then :meth:`validate` asks it)."""
        if self.pandera_only is not None:
            return None
        # a list of the names first: iterating pandas 3's Arrow-backed column Index is slow
        columns = df.columns.tolist()
        names = set(columns)
        if len(names) != len(columns) or not self._required <= names <= self._columns.keys():
            return None  # duplicate, missing or unknown columns: pandera names them
        try:
            frame = self._coerced(df, columns)
            if frame is None or not self._columns_pass(frame, columns):
                return None
            if not all(check.passes(frame) for check in self._frame_checks):
                return None
        except Exception:  # pandera reports whatever went wrong, with the rows
            return None
        return frame

    def _coerced(self, df: pd.DataFrame, columns: list) -> pd.DataFrame | None:
        coerced = {}
        for name, dtype in zip(columns, df.dtypes.tolist(), strict=True):
            col = self._columns[name]
            if dtype == col.dtype.type:
                if dtype == np.dtype("O") and isinstance(col.dtype, pa_dtypes.String):
                    # pandera's str also checks every non-null value is a str: mixed values
                    # (an int among str) are pandera's to judge (refuse, or coerce)
                    values = df[name].dropna()
                    if not all(isinstance(v, str) for v in values):
                        return None
                continue  # coercing to the same dtype changes nothing
            if not col.coerce:
                return None  # pandera judges whether this dtype is acceptable
            coerced[name] = col.dtype.try_coerce(df[name])
        return df.assign(**coerced) if coerced else df

    def _columns_pass(self, frame: pd.DataFrame, columns: list) -> bool:
        """``columns``: the frame's column names (coercion keeps names and their order)."""
        if len(frame) <= self._small_frame:
            return self._small_columns_pass(frame, columns)
        arrays = [frame[name].to_numpy() for name in frame.columns]
        for name, values in zip(frame.columns, arrays, strict=True):
            col = self._columns[name]
            if not _values_pass(np.asarray(values), col):
                return False
            for check in col.delegated:
                if not bool(check(frame, name).check_passed):
                    return False
        return True

    def _small_columns_pass(self, frame: pd.DataFrame, columns: list) -> bool:
        """The same checks on a few rows: one object block and one null mask for the whole
        frame (a Series, or a numpy call, per column costs ~10 us), then a Python comparison per
        value: the same comparisons numpy makes element by element on object arrays."""
        block = frame.to_numpy(dtype=object)
        nulls = pd.isna(block)
        has_nulls = nulls.any(axis=0).tolist()
        for i, (name, column) in enumerate(zip(columns, block.T.tolist(), strict=True)):
            col = self._columns[name]
            values = column
            if has_nulls[i]:
                # pandera's uniqueness counts nulls too; leave that corner to pandera
                if not col.nullable or col.unique:
                    return False
                kept = zip(column, nulls[:, i].tolist(), strict=True)
                values = [v for v, null in kept if not null]
            if (
                col.unique
                and len(values) > 1
                and len(pd.unique(np.asarray(values, dtype=object))) != len(values)
            ):
                return False
            for check in col.scalar:
                if not all(check(v) for v in values):
                    return False
            for check in col.delegated:
                if not bool(check(frame, name).check_passed):
                    return False
        return True


@dataclass(frozen=True)
class _FrameCheck:
    """A frame-wide check (a row rule). ``function`` is the function pandera's own pandas check
    backend calls (with the check's arguments bound) when the check is a plain one (not
    element-wise, not grouped), else None."""

    check: pa.Check
    function: Callable[[pd.DataFrame], object] | None

    def passes(self, frame: pd.DataFrame) -> bool:
        """pandera's verdict. When the function's own output is all True, pandera's is too (it
        only ORs in rows that are entirely null, then takes ``all``), so that output is enough;
        anything else (a False, a null, another type, an error) is pandera's to judge."""
        if self.function is not None:
            try:
                output = self.function(frame)
            except Exception:
                output = None
            if _all_true(output):
                return True
        return bool(self.check(frame).check_passed)


def _all_true(output: object) -> bool:
    if isinstance(output, bool | np.bool_):
        return bool(output)
    if isinstance(output, pd.Series) and output.dtype == np.dtype(bool):
        return bool(output.to_numpy().all())
    return False


def _compile_frame_check(check: pa.Check) -> _FrameCheck:
    if check.element_wise or check.groupby is not None:
        return _FrameCheck(check, None)
    return _FrameCheck(check, PandasCheckBackend(check).check_fn)


def _unmodelled(schema: pa.DataFrameSchema) -> str | None:
    """The first schema feature the fast path does not model, or None."""
    features = {
        "an index schema": schema.index is not None,
        "ordered columns": schema.ordered,
        "strict='filter'": schema.strict == "filter",
        "table-wide uniqueness": bool(schema.unique),
        "a table-wide dtype": schema.dtype is not None,
        "add_missing_columns": schema.add_missing_columns,
        "drop_invalid_rows": schema.drop_invalid_rows,
        "table parsers": bool(schema.parsers),
    }
    for name, col in schema.columns.items():
        features[f"column {name}: regex names"] = col.regex
        features[f"column {name}: no dtype"] = col.dtype is None
        features[f"column {name}: a default"] = col.default is not None
        features[f"column {name}: parsers"] = bool(col.parsers)
        features[f"column {name}: drop_invalid_rows"] = col.drop_invalid_rows
    return next((feature for feature, present in features.items() if present), None)


def _is_builtin(check: pa.Check) -> bool:
    """True when ``check`` is exactly pandera's built-in of that name (not a custom check that
    happens to share the name): the same check pandera's public factory builds."""
    if check.name not in _BUILTINS or check.statistics is None:
        return False
    try:
        return check == getattr(pa.Check, check.name)(**check.statistics)
    except TypeError:
        return False


def _compile_column(name: str, col: pa.Column, schema_coerce: bool) -> _Column:
    compiled, scalar, delegated = [], [], []
    for check in col.checks:
        if _is_builtin(check):
            compiled.append(_BUILTINS[check.name](**check.statistics))
            scalar.append(_SCALAR_BUILTINS[check.name](**check.statistics))
        else:
            delegated.append(check)
    return _Column(
        name=name,
        dtype=col.dtype,
        coerce=bool(col.coerce or schema_coerce),
        nullable=col.nullable,
        unique=col.unique,
        compiled=tuple(compiled),
        scalar=tuple(scalar),
        delegated=tuple(delegated),
    )


def _values_pass(values: np.ndarray, col: _Column) -> bool:
    if values.dtype.kind not in "biu":
        nulls = pd.isna(values)
        if nulls.any():
            # pandera's uniqueness counts nulls too; leave that corner to pandera
            if not col.nullable or col.unique:
                return False
            values = values[~nulls]
    if col.unique and len(values) > 1 and len(pd.unique(values)) != len(values):
        return False
    return all(bool(np.all(check(values))) for check in col.compiled)
