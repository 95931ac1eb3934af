"""Contracts between the model (ml_app's pipeline model) and the application using it (user_app)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

DECISIONS = ("approve", "review", "decline")
CHANNELS = ("batch", "online")
# Who answered a scoring call: the champion (primary), the challenger for a share of online
# traffic (canary) or alongside the champion without affecting the answer (shadow), or nobody
# (fallback: the client decided "review" because the service was down or slow).
ROUTES = ("primary", "canary", "shadow", "fallback")


class FraudScore(pa.DataFrameModel):
    """What the pipeline model returns for a batch of TransactionInstance rows."""

    transaction_id: Series[int] = pa.Field(ge=0, unique=True, description="Source-system key.")
    score: Series[float] = pa.Field(
        ge=0.0, le=1.0, description="Estimated probability that the payment is fraudulent."
    )

    class Config:
        name = "FraudScore"
        description = "Model output: one fraud score per transaction (ml_app -> user_app)."
        strict = True
        coerce = True


class FraudDecision(FraudScore):
    """A score turned into a business decision by user_app, with everything needed to audit it."""

    event_time: Series[pd.Timestamp] = pa.Field(description="When the payment happened (UTC).")
    decision: Series[str] = pa.Field(isin=DECISIONS, description="approve, review or decline.")
    review_threshold: Series[float] = pa.Field(
        ge=0.0, le=1.0, description="Scores at or above this are reviewed."
    )
    decline_threshold: Series[float] = pa.Field(
        ge=0.0, le=1.0, description="Scores at or above this are declined."
    )
    model_name: Series[str] = pa.Field(str_length={"min_value": 1}, description="Registry name.")
    model_version: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Registry version that produced the score."
    )
    scored_at: Series[pd.Timestamp] = pa.Field(description="When the score was computed (UTC).")
    user_app_version: Series[str] = pa.Field(description="user_app release that decided.")

    class Config:
        name = "FraudDecision"
        description = "Decision per transaction (user_app -> monitoring)."
        strict = True
        coerce = True

    @pa.dataframe_check(name="thresholds_ordered")
    @classmethod
    def _thresholds_ordered(cls, df: pd.DataFrame) -> pd.Series:
        return df["review_threshold"] <= df["decline_threshold"]

    @pa.dataframe_check(name="decision_follows_thresholds")
    @classmethod
    def _decision_follows_thresholds(cls, df: pd.DataFrame) -> pd.Series:
        expected = pd.Series("approve", index=df.index)
        expected = expected.mask(df["score"] >= df["review_threshold"], "review")
        expected = expected.mask(df["score"] >= df["decline_threshold"], "decline")
        return df["decision"] == expected


class PredictionLog(pa.DataFrameModel):
    """One row per scoring call (a batch run or an online request): who answered, how fast."""

    request_id: Series[str] = pa.Field(unique=True, description="Unique id of the scoring call.")
    channel: Series[str] = pa.Field(isin=CHANNELS, description="batch or online.")
    model_name: Series[str] = pa.Field(str_length={"min_value": 1})
    model_version: Series[str] = pa.Field(str_length={"min_value": 1})
    model_run_id: Series[str] = pa.Field(description="MLflow run that trained the model.")
    scored_at: Series[pd.Timestamp] = pa.Field(description="When scoring finished (UTC).")
    n_rows: Series[int] = pa.Field(ge=0, description="Transactions scored.")
    latency_ms: Series[float] = pa.Field(ge=0.0, description="Wall time of model predict.")
    n_approve: Series[int] = pa.Field(ge=0)
    n_review: Series[int] = pa.Field(ge=0)
    n_decline: Series[int] = pa.Field(ge=0)
    user_app_version: Series[str]
    route: Series[str] | None = pa.Field(
        isin=ROUTES, description="primary, canary, shadow or fallback (absent before 0.1.3)."
    )

    class Config:
        name = "PredictionLog"
        description = "Audit log of scoring calls (user_app -> monitoring)."
        strict = True
        coerce = True

    @pa.dataframe_check(name="decision_counts_add_up")
    @classmethod
    def _decision_counts_add_up(cls, df: pd.DataFrame) -> pd.Series:
        return df["n_approve"] + df["n_review"] + df["n_decline"] == df["n_rows"]
