"""Source rows as the ETL may use them: parsed, screened and deduplicated *before* any feature.

The source system is not trusted. Every payment row passes the checks here first; a row that
fails goes to quarantine with the checks it failed and never feeds another payment's features
(velocity counts, merchant aggregates, medians). The checks are the contract's own column rules
(:class:`shared_schemas.etl_to_ml.TransactionInstance`, so there is one definition of a valid
amount or category) plus what only the producer can judge: a plausible event time and duplicates.

Timestamps arrive in any ISO 8601 form (``2025-04-12 10:00:00``, ``...T10:00:00Z``,
``...+05:00``); they are normalised to naive UTC, a value without an offset being UTC already.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pandera.pandas as pa

from shared_runtime.fast import FastContract
from shared_runtime.quarantine import FAILED_CHECKS, split_valid_rows
from shared_schemas.etl_to_ml import TransactionInstance

logger = logging.getLogger(__name__)

#: The columns the source extract returns for a payment (the rest are left out).
PAYMENT_COLUMNS = [
    "transaction_id",
    "card_id",
    "customer_id",
    "merchant_id",
    "amount",
    "event_time",
    "merchant_category",
    "merchant_country",
    "home_country",
]
CONFLICTING_DUPLICATE = "transaction_id:conflicting_duplicate"


def utc_times(values: pd.Series) -> pd.Series:
    """Timestamps in any ISO 8601 form (or database timestamps) as naive UTC; NaT where a value
    does not parse."""
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601").dt.tz_convert(None)


def utc_naive(values: pd.Series) -> pd.Series:
    """:func:`utc_times`, but values that do not parse keep their original text, so the contract
    check that follows quarantines them by name (``event_time:coerce_dtype('datetime64[ns]')``).
    """
    naive = utc_times(values)
    unparsed = naive.isna() & values.notna()
    if not unparsed.any():
        return naive
    return naive.astype(object).where(~unparsed, values)


@dataclass(frozen=True)
class EventTimeBounds:
    """Event times a source row may carry: from the source system's start to the run's clock."""

    earliest: pd.Timestamp
    latest: pd.Timestamp

    @classmethod
    def from_params(cls, params: dict) -> EventTimeBounds:
        """``{earliest, clock (null = now, UTC), clock_tolerance_minutes}``."""
        clock = params.get("clock")
        now = pd.Timestamp(clock) if clock else pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
        latest = now + pd.Timedelta(minutes=params["clock_tolerance_minutes"])
        return cls(pd.Timestamp(params["earliest"]), latest)

    def check(self) -> pa.Check:
        """``plausible_event_time``: earliest <= event_time <= latest."""
        return pa.Check(
            lambda s: (s >= self.earliest) & (s <= self.latest),
            element_wise=False,
            name="plausible_event_time",
        )


def with_plausible_event_time(schema: pa.DataFrameSchema, bounds: EventTimeBounds):
    """``schema`` whose ``event_time`` must also lie within ``bounds``."""
    column = schema.columns["event_time"]
    return schema.update_column("event_time", checks=[*column.checks, bounds.check()])


def source_payment_schema(bounds: EventTimeBounds) -> pa.DataFrameSchema:
    """The contract's rules for the columns a source payment carries, with a plausible time.

    Uniqueness is left to :func:`deduplicate` (an exact copy is harmless, a conflicting one is
    not), and the contract's row rules are about features, which do not exist yet.
    """
    contract = TransactionInstance.to_schema()
    columns = {name: contract.columns[name] for name in PAYMENT_COLUMNS if name in contract.columns}
    schema = pa.DataFrameSchema(
        {
            **columns,
            "home_country": contract.columns["merchant_country"].set_name("home_country"),
        },
        name="SourcePayment",
        strict="filter",
        coerce=True,
    ).update_column("transaction_id", unique=False)
    return with_plausible_event_time(schema, bounds)


def deduplicate(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(rows without exact copies, conflicting duplicates, number of exact copies dropped).

    An exact copy (every column equal) is the same payment extracted twice: one is kept. Rows
    that share a transaction id but differ are conflicting: nothing tells which one is true, so
    all of them are set aside.
    """
    ids = rows["transaction_id"]
    shared = ids.notna() & ids.duplicated(keep=False)  # cheap: whole rows compared only here
    exact = pd.Series(False, index=rows.index)
    exact[shared] = rows[shared].duplicated(keep="first")
    unique, ids = rows[~exact], ids[~exact]
    conflicting = ids.notna() & ids.duplicated(keep=False)
    return unique[~conflicting], unique[conflicting], int(exact.sum())


class _SchemaModel:
    """A schema where :class:`~shared_runtime.fast.FastContract` expects a contract model."""

    def __init__(self, schema: pa.DataFrameSchema):
        self.__name__ = schema.name or "schema"
        self._schema = schema

    def to_schema(self) -> pa.DataFrameSchema:
        return self._schema


def all_valid(rows: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame | None:
    """``rows`` validated (typed) by ``schema`` if every row passes, else None.

    The contract's checks compiled once by :class:`~shared_runtime.fast.FastContract` (pandera's
    semantics, a fraction of its cost; it can only accept, never judge a row differently). The
    source frames hold exactly the schema's columns, so its ``strict="filter"`` (not modelled by
    the fast path) is checked as ``strict=True``: any other column leaves the verdict to pandera.
    """
    strict = copy.copy(schema)
    strict.strict = True
    accepted = FastContract(_SchemaModel(strict)).fast_path(rows)
    return None if accepted is None else accepted.reset_index(drop=True)


def screen_rows(
    rows: pd.DataFrame, schema: pa.DataFrameSchema
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(valid typed rows, rejected rows with their failed checks, exact copies dropped).

    When every row passes (the usual case) the compiled contract says so without pandera; any
    failure hands the frame to pandera, which names each rejected row's failed checks.
    """
    deduped, conflicting, copies = deduplicate(rows)
    valid = all_valid(deduped, schema)
    if valid is None:
        valid, rejected, _ = split_valid_rows(deduped, schema)
    else:
        rejected = (
            deduped.iloc[:0].astype("string").assign(**{FAILED_CHECKS: pd.Series(dtype="string")})
        )
    conflicts = conflicting.astype(object).where(conflicting.notna(), None).astype("string")
    conflicts[FAILED_CHECKS] = CONFLICTING_DUPLICATE
    rejected = pd.concat([rejected, conflicts.reset_index(drop=True)], ignore_index=True)
    return valid, rejected.astype("string"), copies
