"""etl_labels: delayed ground truth as known at a cutoff (``as_of``).

A payment is *fraud* from the moment its first chargeback is received. It is *legitimate* only
once it has matured (``maturity_days`` passed without a chargeback); younger payments get no label
at all, because "no chargeback yet" is not evidence of "legit".
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from etl_app.pipelines.quality import split_for_publication
from etl_app.pipelines.source import EventTimeBounds, utc_times, with_plausible_event_time
from shared_schemas.etl_to_ml import FraudLabel

logger = logging.getLogger(__name__)


def build_labels(
    payments: pd.DataFrame, chargebacks: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """One FraudLabel row per payment whose outcome is known at ``as_of``; others are left out."""
    as_of = pd.Timestamp(params["as_of"])
    maturity = pd.Timedelta(days=params["maturity_days"])
    tx = pd.DataFrame(
        {
            "transaction_id": pd.to_numeric(payments["transaction_id"], errors="coerce"),
            "event_time": utc_times(payments["event_time"]),
        }
    )
    first_cb = (
        pd.DataFrame(
            {
                "transaction_id": pd.to_numeric(chargebacks["transaction_id"], errors="coerce"),
                "received_at": utc_times(chargebacks["received_at"]),
            }
        )
        .query("received_at <= @as_of")
        .groupby("transaction_id", as_index=False)["received_at"]
        .min()
    )
    labelled = tx.merge(first_cb, on="transaction_id", how="left")
    is_fraud = labelled["received_at"].notna()
    matured = labelled["event_time"] + maturity <= as_of
    # Unparseable event times are kept (they fail the contract and go to quarantine).
    keep = is_fraud | matured | labelled["event_time"].isna()
    out = labelled[keep]
    fraud = is_fraud[keep]
    labels = pd.DataFrame(
        {
            "transaction_id": out["transaction_id"],
            "event_time": out["event_time"],
            "is_fraud": fraud,
            "label_time": out["received_at"].where(fraud, out["event_time"] + maturity),
            "label_source": fraud.map({True: "chargeback", False: "matured"}),
            "as_of": as_of,
        }
    ).reset_index(drop=True)
    logger.info(
        "Labels as of %s: %d payments in window, %d labelled (%d fraud), %d not mature yet",
        as_of,
        len(tx),
        len(labels),
        int(fraud.sum()),
        int((~keep).sum()),
    )
    return labels


def split_labels(
    labels: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Valid rows go to the exchange, invalid ones to quarantine with their failed checks.

    Besides the contract, a label's event time must be plausible for the source system, as an
    instance's must (:class:`~etl_app.pipelines.source.EventTimeBounds`).
    """
    bounds = EventTimeBounds.from_params(params["event_time"])
    schema = with_plausible_event_time(FraudLabel.to_schema(), bounds)
    return split_for_publication(labels, schema, params["max_reject_ratio"])
