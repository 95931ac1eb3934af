"""Backward compatibility: data valid under the previous released contracts still validates.

``tests/frozen/v<version>/`` holds verbatim copies of each released contract module. Data is
generated from the *frozen* schemas with pandera's hypothesis strategies (row rules repaired
after drawing, as strategies cannot satisfy cross-column checks) and must pass the *current*
contracts of the same name. A breaking change makes this fail: bump the major version (minor
while at 0.x) and record the break in the changelog instead.
"""

import importlib

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings

from shared_schemas import etl_to_ml, ml_to_user, monitoring

MODELS = {
    "TransactionInstance": etl_to_ml,
    "FraudLabel": etl_to_ml,
    "FraudScore": ml_to_user,
    "FraudDecision": ml_to_user,
    "PredictionLog": ml_to_user,
    "PromotionDecision": monitoring,
    "MonitoringReport": monitoring,
}
# release folder -> contracts frozen there (a module unchanged since an earlier release is
# checked through that release's copy)
FROZEN = {
    "v0_1_0": ["TransactionInstance", "FraudLabel", "FraudScore", "FraudDecision", "PredictionLog"],
    "v0_1_2": ["PromotionDecision", "MonitoringReport"],
}
CASES = [(release, name) for release, names in FROZEN.items() for name in names]


def _repair(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Make drawn rows satisfy the row rules of the contract (column values stay drawn)."""
    df = df.copy()
    if name == "TransactionInstance":
        df["hour_of_day"] = df["event_time"].dt.hour
        windows = ["tx_count_1h", "tx_count_24h", "tx_count_7d"]
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
    return df


def _column_strategy(model: type[pa.DataFrameModel]) -> st.SearchStrategy[pd.DataFrame]:
    schema = model.to_schema()
    schema.checks = []  # row rules are repaired after drawing
    return schema.strategy(size=4)


@pytest.mark.parametrize(("release", "name"), CASES)
def test_data_of_previous_release_validates_today(release, name):
    frozen_module = importlib.import_module(
        f"tests.frozen.{release}.{MODELS[name].__name__.rsplit('.', 1)[1]}"
    )
    frozen = getattr(frozen_module, name)
    current = getattr(MODELS[name], name)

    checked = []

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(_column_strategy(frozen))
    def check(drawn: pd.DataFrame) -> None:
        df = _repair(name, drawn)
        try:
            frozen.validate(df)
        except pa.errors.SchemaError:
            assume(False)  # not valid under the old contract either: not evidence
        current.validate(df)
        checked.append(len(df))

    check()
    assert checked, (
        "no generated frame was valid under the frozen contract: the test proves nothing"
    )
