"""Online featurization: a raw payment's features from the source system, with the batch's SQL.

A payment gateway knows only the payment itself (:data:`REQUEST_COLUMNS`). Its features depend on
the history of its card and its merchant, which live in the source system.
:class:`OnlineFeaturizer` reads from the source database exactly the rows that can enter the
payment's window frames in :func:`~etl_app.pipelines.etl_instances.features.feature_sql`, and then
runs the batch pipeline's own functions on them:
:func:`~etl_app.pipelines.etl_instances.nodes.screen_payments` (the same screening) and
:func:`~etl_app.pipelines.etl_instances.nodes.build_point_in_time_features` (the same SQL text in
DuckDB), over ``history (in_window false) + the payment(s) (in_window true)``. There is
no second definition of any feature, so online and batch features are equal bit for bit
(``etl_app/tests/test_online.py`` proves it).

What can reach a payment at time ``t`` (``ts`` = ``t`` in whole seconds; every frame ends
``1 PRECEDING``, so nothing of the payment's own second is seen):

- partition ``card_id`` (and its sub-partitions ``card_id, merchant_id`` / ``card_id,
  merchant_country``): the card's payments with ``ts - lookback <= ts' < ts``;
- partition ``merchant_id``: the merchant's payments and the chargebacks it received with
  ``ts - merchant window <= ts' < ts``;
- screening drops chargebacks of rejected payments: the payments of those chargebacks are read
  and screened too.

Each lookup is a range on an index of the source tables (``ix_transactions_card_time`` and
``ix_transactions_merchant_time``, both covering, ``ix_chargebacks_transaction``, the parties'
ids: see the ``source_*`` entries of etl_app's catalog), bound with SQLAlchemy ``text()`` so the
same code reads SQLite and Postgres.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import sqlalchemy
from sqlalchemy import bindparam, text

from etl_app.pipelines.etl_instances.features import DAY, MERCHANT_WINDOW_DAYS
from etl_app.pipelines.etl_instances.nodes import build_point_in_time_features, screen_payments
from etl_app.pipelines.source import PAYMENT_COLUMNS
from shared_runtime.fast import FastContract
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.gateway_to_etl import PaymentRequest

#: The contract, compiled for single rows (pandera's errors and coercion, ~1 ms instead of ~15).
CONTRACT = FastContract(TransactionInstance)

#: What a gateway sends for a payment (the source system's payment columns).
REQUEST_COLUMNS = list(PaymentRequest.to_schema().columns)

#: The source extract's select list and joins, as the catalog's ``source_window_payments``
#: (``etl_app/tests/test_online.py`` checks they are the same text).
PAYMENTS_SELECT = """SELECT t.transaction_id, t.card_id, c.customer_id, t.merchant_id, t.amount,
       t.event_time, m.category AS merchant_category, m.country AS merchant_country, cu.home_country
FROM transactions AS t
LEFT JOIN cards AS c ON c.card_id = t.card_id
LEFT JOIN customers AS cu ON cu.customer_id = c.customer_id
LEFT JOIN merchants AS m ON m.merchant_id = t.merchant_id"""

_HISTORY = text(
    f"""{PAYMENTS_SELECT}
WHERE t.card_id = :card_id AND t.event_time >= :card_start AND t.event_time < :end
UNION
{PAYMENTS_SELECT}
WHERE t.merchant_id = :merchant_id AND t.event_time >= :merchant_start AND t.event_time < :end"""
)
_CHARGEBACKS = text(
    """SELECT cb.transaction_id, t.merchant_id, cb.received_at
FROM transactions AS t JOIN chargebacks AS cb ON cb.transaction_id = t.transaction_id
WHERE t.merchant_id = :merchant_id AND t.event_time < :end
  AND cb.received_at >= :merchant_start AND cb.received_at < :end"""
)
_PAYMENTS_BY_ID = text(f"{PAYMENTS_SELECT}\nWHERE t.transaction_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)
_HOME_COUNTRY = text("SELECT home_country FROM customers WHERE customer_id = :customer_id")


class RejectedPayment(ValueError):
    """A requested payment fails the source contract (the batch would quarantine it)."""

    def __init__(self, rejected: pd.DataFrame):
        self.rejected = rejected
        super().__init__(
            "payment(s) rejected by screening: "
            + "; ".join(
                f"{row.transaction_id}: {row.failed_checks}" for row in rejected.itertuples()
            )
        )


def _bound(value: pd.Timestamp) -> str:
    """A time bound as text: compares the same way with SQLite's text and Postgres' timestamps."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


class OnlineFeaturizer:
    """``featurize(payments)``: TransactionInstance rows for raw payments, from the source system.

    Args:
        source_url: SQLAlchemy URL of the source system (``ETL_SOURCE_DB_URL``).
        params: etl_app's ``etl_instances`` parameters (``lookback_days``, ``event_time``, ...).
        engine_args: passed to :func:`sqlalchemy.create_engine`.
    """

    def __init__(
        self,
        source_url: str,
        params: Mapping[str, Any],
        engine_args: Mapping[str, Any] | None = None,
    ):
        self.params = dict(params)
        self.engine = sqlalchemy.create_engine(source_url, **dict(engine_args or {}))
        self._card_span = pd.Timedelta(seconds=int(self.params["lookback_days"]) * DAY)
        self._merchant_span = pd.Timedelta(seconds=MERCHANT_WINDOW_DAYS * DAY)
        # one DuckDB connection for every request (opening one costs more than the query);
        # a connection runs one query at a time
        self._duckdb = duckdb.connect()
        self._duckdb_lock = threading.Lock()

    @classmethod
    def from_conf(cls, conf_source: str | Path, env: str | None = None) -> OnlineFeaturizer:
        """Built from an etl_app conf folder: its ``etl_instances`` parameters and ``source_db``."""
        from etl_app.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS  # noqa: PLC0415

        loader = CONFIG_LOADER_CLASS(str(conf_source), env=env, **CONFIG_LOADER_ARGS)
        return cls(loader["credentials"]["source_db"]["con"], loader["parameters"]["etl_instances"])

    def history(self, payments: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(source payments, chargebacks) that can influence the features of ``payments``."""
        with self.engine.connect() as con:
            return self._history(con, payments)

    def _history(self, con, payments: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        frames, chargebacks = [], []
        for card_id, merchant_id, event_time in zip(
            payments["card_id"], payments["merchant_id"], payments["event_time"], strict=True
        ):
            end = pd.Timestamp(event_time).floor("s")
            binds = {
                "card_id": int(card_id),
                "merchant_id": int(merchant_id),
                "card_start": _bound(end - self._card_span),
                "merchant_start": _bound(end - self._merchant_span),
                "end": _bound(end),
            }
            frames.append(self._frame(con, _HISTORY, binds, PAYMENT_COLUMNS))
            chargebacks.append(
                self._frame(
                    con,
                    _CHARGEBACKS,
                    binds,
                    ["transaction_id", "merchant_id", "received_at"],
                )
            )
        cbs = pd.concat(chargebacks, ignore_index=True).drop_duplicates(ignore_index=True)
        history = pd.concat(frames, ignore_index=True)
        missing = sorted(set(cbs["transaction_id"]) - set(history["transaction_id"]))
        if missing:  # screened too: a rejected payment's chargebacks feed nothing
            frames.append(self._frame(con, _PAYMENTS_BY_ID, {"ids": missing}, PAYMENT_COLUMNS))
            history = pd.concat(frames, ignore_index=True)
        return history.drop_duplicates(ignore_index=True), cbs

    @staticmethod
    def _frame(con, query, binds: dict, columns: list[str]) -> pd.DataFrame:
        rows = con.execute(query, binds).fetchall()
        return pd.DataFrame.from_records(rows, columns=columns)

    @staticmethod
    def _with_home_country(con, payments: pd.DataFrame) -> pd.DataFrame:
        homes = {
            customer_id: con.execute(_HOME_COUNTRY, {"customer_id": int(customer_id)}).scalar()
            for customer_id in payments["customer_id"].unique()
        }
        return payments.assign(home_country=payments["customer_id"].map(homes))

    def featurize(self, payments: pd.DataFrame, validate: bool = True) -> pd.DataFrame:
        """One TransactionInstance row per payment, in order.

        ``event_time`` may be ISO 8601 text (any offset) or timestamps, as the batch reads them.

        Raises :class:`RejectedPayment` if a payment fails the source contract.
        """
        with self.engine.connect() as con:  # one connection (pool checkout) per request
            requests = self._with_home_country(con, payments.reindex(columns=REQUEST_COLUMNS))
            history, chargebacks = self._history(con, requests)
        # a requested payment already recorded in the source is the request, not its history
        history = history[~history["transaction_id"].isin(requests["transaction_id"])]
        screened, usable_cbs, rejected, _ = screen_payments(
            requests, history, chargebacks, self.params
        )
        if len(rejected):
            raise RejectedPayment(rejected)
        with self._duckdb_lock:
            features = build_point_in_time_features(
                screened, usable_cbs, self.params, con=self._duckdb
            )
        return CONTRACT.validate(features) if validate else features
