"""Hypothesis strategies for data valid under a contract (install the ``strategies`` extra).

pandera draws each column from its dtype and column checks; it cannot satisfy row rules
(cross-column checks), so :func:`satisfy_row_rules` repairs drawn rows afterwards, keeping the
column values drawn. Keyed by contract name, so it also repairs frozen copies of released contracts
(tests/test_compatibility.py).
"""

from __future__ import annotations

import copy

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pandera.pandas as pa

from shared_schemas.etl_to_ml import VELOCITY_WINDOWS


def satisfy_row_rules(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Make drawn rows of contract ``name`` satisfy its row rules (column values stay drawn)."""
    df = df.copy()
    if name == "TransactionInstance":
        df["hour_of_day"] = df["event_time"].dt.hour
        # the hot windows (5m, 15m) are optional since 0.1.5: frozen copies have none
        windows = [c for c in VELOCITY_WINDOWS if c in df]
        df[windows] = np.sort(df[windows].to_numpy(), axis=1)
    elif name == "FraudLabel":
        df["label_time"] = df["event_time"]
        df["as_of"] = df["event_time"]
        df["label_source"] = df["is_fraud"].map({True: "chargeback", False: "matured"})
    elif name == "FraudDecision":
        df["decline_threshold"] = df[["review_threshold", "decline_threshold"]].max(axis=1)
        df["decision"] = "approve"
        df.loc[df["score"] >= df["review_threshold"], "decision"] = "review"
        df.loc[df["score"] >= df["decline_threshold"], "decision"] = "decline"
    elif name == "PredictionLog":
        df["n_rows"] = df["n_approve"] + df["n_review"] + df["n_decline"]
    elif name == "PromotionDecision":
        df["window_end"] = df["window_start"] + pd.Timedelta(days=7)
        df["champion_after"] = df["challenger_version"].where(
            df["promoted"], df["champion_version"]
        )
    elif name == "MonitoringReport":
        df["period_end"] = df["period_start"] + pd.Timedelta(days=7)
        df = df.drop_duplicates(["period_start", "model_version", "kind", "metric", "feature"])
    elif name == "OnlineMonitoringReport":
        df["period_end"] = df["period_start"] + pd.Timedelta(days=7)
        keys = ["period_start", "route", "model_version", "kind", "metric", "champion_version"]
        df = df.drop_duplicates(keys)
    return df


def contract_frames(
    model: type[pa.DataFrameModel], size: int = 4
) -> st.SearchStrategy[pd.DataFrame]:
    """Frames of ``size`` rows drawn from ``model``'s columns, row rules repaired. Rarely, a
    repaired frame still fails (a drawn duplicate key, say): callers validate or ``assume``."""
    schema = copy.deepcopy(model.to_schema())  # pandera caches the schema: never edit it in place
    schema.checks = []  # row rules are repaired after drawing
    name = schema.name or model.__name__
    return schema.strategy(size=size).map(lambda df: satisfy_row_rules(name, df))
