"""etl_instances: source payments -> point-in-time features -> TransactionInstance rows."""

from __future__ import annotations

import logging
from typing import Any

import duckdb
import pandas as pd
import pandera.pandas as pa

from etl_app.pipelines.etl_instances.features import feature_sql
from etl_app.pipelines.quality import split_for_publication
from etl_app.pipelines.source import (
    PAYMENT_COLUMNS,
    EventTimeBounds,
    screen_rows,
    source_payment_schema,
    utc_naive,
    utc_times,
)
from shared_schemas.etl_to_ml import TransactionInstance

logger = logging.getLogger(__name__)


def screen_payments(
    window_payments: pd.DataFrame,
    history_payments: pd.DataFrame,
    chargebacks: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Decide what may feed features *before* computing any: (payments, chargebacks, rejected
    window rows, counts).

    ``payments`` holds the usable window and history rows, typed, with ``in_window``. Rejected
    window rows go to quarantine with their failed checks; rejected history rows were (or will
    be) quarantined by the run of their own window and are only counted here. Chargebacks of a
    rejected payment are dropped too: nothing quarantined contributes to any feature.
    """
    schema = source_payment_schema(EventTimeBounds.from_params(params["event_time"]))
    schema = schema.add_columns({"in_window": pa.Column(bool)})
    raw = pd.concat(
        [
            window_payments.reindex(columns=PAYMENT_COLUMNS).assign(in_window=True),
            history_payments.reindex(columns=PAYMENT_COLUMNS).assign(in_window=False),
        ],
        ignore_index=True,
    )
    raw["event_time"] = utc_naive(raw["event_time"])
    payments, rejected, copies = screen_rows(raw, schema)
    in_window = rejected["in_window"].eq("True")
    rejected_ids = set(pd.to_numeric(rejected["transaction_id"], errors="coerce").dropna())
    cbs = pd.DataFrame(
        {
            "transaction_id": pd.to_numeric(chargebacks["transaction_id"], errors="coerce"),
            "merchant_id": pd.to_numeric(chargebacks["merchant_id"], errors="coerce"),
            "received_at": utc_times(chargebacks["received_at"]),
        }
    ).dropna()
    usable_cbs = cbs[~cbs["transaction_id"].isin(rejected_ids)]
    counts = {
        "exact_duplicates_dropped": copies,
        "history_rows_rejected": int((~in_window).sum()),
        "chargebacks_dropped": len(chargebacks) - len(usable_cbs),
    }
    logger.info(
        "Screened %d window and %d history payments: %d usable, %d window rows to quarantine, "
        "%d exact duplicate(s) dropped, %d history row(s) and %d chargeback(s) left out",
        len(window_payments),
        len(history_payments),
        len(payments),
        int(in_window.sum()),
        copies,
        counts["history_rows_rejected"],
        counts["chargebacks_dropped"],
    )
    return (
        payments,
        usable_cbs[["merchant_id", "received_at"]].astype({"merchant_id": "int64"}),
        rejected[in_window].drop(columns="in_window").reset_index(drop=True),
        counts,
    )


def build_point_in_time_features(
    payments: pd.DataFrame,
    chargebacks: pd.DataFrame,
    params: dict[str, Any],
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Features of every screened window payment, computed from what was known before it.

    History payments (``in_window`` false: the lookback before the window) and ``chargebacks``
    (received before the window end) only feed the features; exactly one output row is produced
    per window payment, in order, so no payment can disappear here. ``con``: a DuckDB connection
    to reuse (online featurization: opening one costs more than the query); default a new one.
    """
    payments = payments.reset_index(drop=True)
    payments.insert(0, "_row", range(len(payments)))
    n_window = int(payments["in_window"].sum())
    if params.get("engine", "duckdb") == "spark":
        from etl_app.pipelines.etl_instances.spark_engine import spark_features  # noqa: PLC0415

        logger.info("Computing features with Spark SQL for %d payments", n_window)
        return spark_features(payments, chargebacks, params["lookback_days"])
    if con is None:
        with duckdb.connect() as own:
            features = _run_feature_sql(own, payments, chargebacks, params["lookback_days"])
    else:
        features = _run_feature_sql(con, payments, chargebacks, params["lookback_days"])
    features = features.drop(columns="_row")
    logger.info(
        "Built point-in-time features for %d payments (%d history rows, %d chargebacks)",
        len(features),
        len(payments) - n_window,
        len(chargebacks),
    )
    return features


def _run_feature_sql(
    con: duckdb.DuckDBPyConnection,
    payments: pd.DataFrame,
    chargebacks: pd.DataFrame,
    lookback_days: int,
) -> pd.DataFrame:
    con.register("payments", payments)
    con.register("chargebacks", chargebacks)
    try:
        return con.sql(feature_sql(lookback_days)).df()
    finally:
        con.unregister("payments")
        con.unregister("chargebacks")


def split_instances(
    features: pd.DataFrame,
    screened_out: pd.DataFrame,
    screening: dict[str, int],
    params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Valid rows go to the exchange; rows refused by screening or by the contract go to
    quarantine with their failed checks.

    With the Spark engine the features arrive as a Spark DataFrame; the contract is checked on
    the pandas side of the boundary, in the same order as the default engine's rows.
    """
    if hasattr(features, "toPandas"):  # a Spark DataFrame (kedro run --env spark)
        features = features.toPandas().sort_values("_row", ignore_index=True)
    if "_row" in features:
        features = features.drop(columns="_row")
    return split_for_publication(
        features,
        TransactionInstance,
        params["max_reject_ratio"],
        screened_out=screened_out,
        counts=screening,
    )
