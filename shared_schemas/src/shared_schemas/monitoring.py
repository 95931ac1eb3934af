"""Contracts for what ml_app reports about the models themselves (ml_app -> operations)."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

PRIMARY_METRICS = ("expected_cost_per_tx", "pr_auc")


class PromotionDecision(pa.DataFrameModel):
    """One run of the promotion gate: both models on the same fresh window, and the verdict."""

    decided_at: Series[pd.Timestamp] = pa.Field(description="When the gate ran (UTC).")
    model_name: Series[str] = pa.Field(str_length={"min_value": 1})
    champion_version: Series[str] = pa.Field(description="Champion before the decision.")
    challenger_version: Series[str] = pa.Field(description="The candidate.")
    promoted: Series[bool] = pa.Field(description="Did the challenger become champion?")
    champion_after: Series[str] = pa.Field(description="Champion after the decision.")
    primary_metric: Series[str] = pa.Field(isin=PRIMARY_METRICS)
    champion_primary: Series[float] = pa.Field(description="Champion's primary metric.")
    challenger_primary: Series[float] = pa.Field(description="Challenger's primary metric.")
    champion_pr_auc: Series[float] = pa.Field(ge=0.0, le=1.0)
    challenger_pr_auc: Series[float] = pa.Field(ge=0.0, le=1.0)
    champion_brier: Series[float] = pa.Field(ge=0.0, le=1.0)
    challenger_brier: Series[float] = pa.Field(ge=0.0, le=1.0)
    champion_recall_at_alerts: Series[float] = pa.Field(ge=0.0, le=1.0)
    challenger_recall_at_alerts: Series[float] = pa.Field(ge=0.0, le=1.0)
    window_start: Series[pd.Timestamp] = pa.Field(description="Evaluation window start.")
    window_end: Series[pd.Timestamp] = pa.Field(description="Evaluation window end (exclusive).")
    n_rows: Series[int] = pa.Field(ge=0, description="Labelled payments in the window.")
    n_fraud: Series[int] = pa.Field(ge=0)
    reason: Series[str] = pa.Field(str_length={"min_value": 1}, description="Why, in words.")

    class Config:
        name = "PromotionDecision"
        description = "Verdict of the champion/challenger promotion gate (ml_app -> operations)."
        strict = True
        coerce = True

    @pa.dataframe_check(name="window_ordered")
    @classmethod
    def _window_ordered(cls, df: pd.DataFrame) -> pd.Series:
        return df["window_start"] < df["window_end"]

    @pa.dataframe_check(name="champion_after_matches_verdict")
    @classmethod
    def _champion_after_matches_verdict(cls, df: pd.DataFrame) -> pd.Series:
        expected = df["challenger_version"].where(df["promoted"], df["champion_version"])
        return df["champion_after"] == expected


MONITORING_KINDS = ("performance", "data_drift", "score_drift")


class MonitoringReport(pa.DataFrameModel):
    """Monitoring results in long form: one row per period, model version, metric (and feature).

    Performance rows are computed only on labelled payments; ``mature`` says whether every
    payment of the period can have its label yet (otherwise the numbers are provisional).
    """

    period_start: Series[pd.Timestamp] = pa.Field(description="Period start (inclusive).")
    period_end: Series[pd.Timestamp] = pa.Field(description="Period end (exclusive).")
    model_version: Series[str] = pa.Field(description="Version that scored the period.")
    kind: Series[str] = pa.Field(isin=MONITORING_KINDS)
    metric: Series[str] = pa.Field(str_length={"min_value": 1}, description="e.g. pr_auc, psi.")
    feature: Series[str] = pa.Field(description="Feature for drift rows; empty otherwise.")
    value: Series[float] = pa.Field(nullable=True, description="NaN when not computable.")
    mature: Series[bool] = pa.Field(description="Labels of the period have all matured.")
    alert: Series[bool] = pa.Field(description="This value breaks an alert rule.")

    class Config:
        name = "MonitoringReport"
        description = "Realised performance and drift per period (ml_app -> operations)."
        strict = True
        coerce = True

    @pa.dataframe_check(name="period_ordered")
    @classmethod
    def _period_ordered(cls, df: pd.DataFrame) -> pd.Series:
        return df["period_start"] < df["period_end"]

    @pa.dataframe_check(name="one_row_per_measure")
    @classmethod
    def _one_row_per_measure(cls, df: pd.DataFrame) -> pd.Series:
        keys = ["period_start", "model_version", "kind", "metric", "feature"]
        return ~df.duplicated(subset=keys, keep=False)


ONLINE_ROUTES = ("primary", "canary", "shadow")
ONLINE_KINDS = ("performance", "comparison")
# "own": the route's own payments; "shared": the payments both the route and the champion scored
ONLINE_TRAFFIC = ("own", "shared")


class OnlineMonitoringReport(pa.DataFrameModel):
    """Online decisions judged like the batch: one row per period, route, model version, metric.

    ``performance`` rows: a route's realised metrics on its own labelled payments, computed by
    the same functions as MonitoringReport's performance rows. ``comparison`` rows: a
    challenger route (canary or shadow) against the champion's answers (route primary) of the
    same period: a shadow on the payments both scored (``traffic`` shared); a canary on its own
    sticky share of payments against the champion's own payments (``traffic`` own: different
    payments drawn from the same traffic, since the canary share is a hash of the payment).
    """

    period_start: Series[pd.Timestamp] = pa.Field(description="Period start (inclusive).")
    period_end: Series[pd.Timestamp] = pa.Field(description="Period end (exclusive).")
    route: Series[str] = pa.Field(isin=ONLINE_ROUTES, description="primary, canary or shadow.")
    model_version: Series[str] = pa.Field(
        str_length={"min_value": 1}, description="Version that scored the route's payments."
    )
    kind: Series[str] = pa.Field(isin=ONLINE_KINDS, description="performance or comparison.")
    traffic: Series[str] = pa.Field(isin=ONLINE_TRAFFIC, description="Which payments: own, shared.")
    metric: Series[str] = pa.Field(str_length={"min_value": 1}, description="e.g. pr_auc.")
    value: Series[float] = pa.Field(nullable=True, description="NaN when not computable.")
    champion_version: Series[str] = pa.Field(
        description="Champion version compared with (comparison rows); empty otherwise."
    )
    champion_value: Series[float] = pa.Field(
        nullable=True, description="The champion's value on the compared traffic; NaN otherwise."
    )
    mature: Series[bool] = pa.Field(description="Labels of the period have all matured.")
    alert: Series[bool] = pa.Field(description="This value breaks an alert rule.")

    class Config:
        name = "OnlineMonitoringReport"
        description = (
            "Realised performance of online decisions per period and route, champion vs "
            "canary and shadow (ml_app -> operations)."
        )
        strict = True
        coerce = True

    @pa.dataframe_check(name="period_ordered")
    @classmethod
    def _period_ordered(cls, df: pd.DataFrame) -> pd.Series:
        return df["period_start"] < df["period_end"]

    @pa.dataframe_check(name="one_row_per_measure")
    @classmethod
    def _one_row_per_measure(cls, df: pd.DataFrame) -> pd.Series:
        keys = ["period_start", "route", "model_version", "kind", "metric", "champion_version"]
        return ~df.duplicated(subset=keys, keep=False)
