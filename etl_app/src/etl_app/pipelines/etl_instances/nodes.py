"""etl_instances: source payments -> point-in-time features -> TransactionInstance rows."""

from __future__ import annotations

import logging
from typing import Any

import duckdb
import pandas as pd

from etl_app.pipelines.etl_instances.features import feature_sql
from etl_app.pipelines.quality import split_for_publication
from shared_schemas.etl_to_ml import TransactionInstance

logger = logging.getLogger(__name__)

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


def _typed_payments(raw: pd.DataFrame, in_window: bool) -> pd.DataFrame:
    """Parse what the source returned; unparseable values become nulls the contract rejects."""
    out = pd.DataFrame(index=raw.index)
    for col in ("transaction_id", "card_id", "customer_id", "merchant_id"):
        out[col] = pd.to_numeric(raw[col], errors="coerce").astype("Int64")
    out["amount"] = pd.to_numeric(raw["amount"], errors="coerce").astype("float64")
    out["event_time"] = pd.to_datetime(raw["event_time"], errors="coerce", format="mixed")
    for col in ("merchant_category", "merchant_country", "home_country"):
        out[col] = raw[col].astype("string")
    out["in_window"] = in_window
    return out


def build_point_in_time_features(
    window_payments: pd.DataFrame,
    history_payments: pd.DataFrame,
    chargebacks: pd.DataFrame,
    params: dict[str, Any],
) -> pd.DataFrame:
    """Features of every payment in the window, computed from what was known before it.

    ``history_payments`` (the lookback before the window) and ``chargebacks`` (received before
    the window end) only feed the features; exactly one output row is produced per row of
    ``window_payments``, in the same order, so no payment can disappear here.
    """
    payments = pd.concat(
        [_typed_payments(window_payments, True), _typed_payments(history_payments, False)],
        ignore_index=True,
    )
    payments.insert(0, "_row", range(len(payments)))
    cbs = pd.DataFrame(
        {
            "merchant_id": pd.to_numeric(chargebacks["merchant_id"], errors="coerce").astype(
                "Int64"
            ),
            "received_at": pd.to_datetime(
                chargebacks["received_at"], errors="coerce", format="mixed"
            ),
        }
    ).dropna()
    if params.get("engine", "duckdb") == "spark":
        from etl_app.pipelines.etl_instances.spark_engine import spark_features  # noqa: PLC0415

        logger.info("Computing features with Spark SQL for %d payments", len(window_payments))
        return spark_features(payments, cbs, params["lookback_days"])
    with duckdb.connect() as con:
        con.register("payments", payments)
        con.register("chargebacks", cbs)
        features = con.sql(feature_sql(params["lookback_days"])).df()
    features = features.drop(columns="_row")
    logger.info(
        "Built point-in-time features for %d payments (%d history rows, %d chargebacks)",
        len(features),
        len(history_payments),
        len(cbs),
    )
    return features


def split_instances(
    features: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Valid rows go to the exchange, invalid ones to quarantine with their failed checks.

    With the Spark engine the features arrive as a Spark DataFrame; the contract is checked on
    the pandas side of the boundary, in the same order as the default engine's rows.
    """
    if hasattr(features, "toPandas"):  # a Spark DataFrame (kedro run --env spark)
        features = features.toPandas().sort_values("_row", ignore_index=True)
    if "_row" in features:
        features = features.drop(columns="_row")
    return split_for_publication(features, TransactionInstance, params["max_reject_ratio"])
