"""Each contract accepts valid data and rejects each kind of bad data with the right check."""

import pandas as pd
import pandera.errors
import pytest

from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.examples import payment_request_example
from shared_schemas.gateway_to_etl import PaymentRequest
from shared_schemas.ml_to_user import FraudDecision, FraudScore, PredictionLog


def failed_checks(model, df) -> set[tuple[str, str]]:
    """(column, check) of each failure; ``<frame>`` for row rules and table-level failures."""
    with pytest.raises(pandera.errors.SchemaErrors) as info:
        model.validate(df, lazy=True)
    cases = info.value.failure_cases
    frame_level = cases["schema_context"].eq("DataFrameSchema")
    columns = cases["column"].astype(str).mask(frame_level, "<frame>")
    return set(zip(columns, cases["check"].astype(str), strict=True))


def test_valid_instances_pass_and_are_coerced(instances):
    as_text = instances.astype({"amount": "string", "tx_count_1h": "float64"})
    out = TransactionInstance.validate(as_text)
    assert out["amount"].dtype == "float64"
    assert out["tx_count_1h"].dtype == "int64"


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("amount", -2.0, "greater_than_or_equal_to(0.0)"),
        ("amount", 5e6, "less_than_or_equal_to(100000.0)"),
        ("merchant_category", "casino", "isin"),
        ("merchant_country", "usa", "str_matches"),
        ("hour_of_day", 24, "less_than_or_equal_to(23)"),
        ("card_id", None, "not_nullable"),
        ("seconds_since_prev_tx", -1.0, "greater_than_or_equal_to(0.0)"),
    ],
)
def test_instances_reject_bad_values(instances, column, value, check):
    bad = instances.astype({column: object})
    bad.loc[0, column] = value
    failures = failed_checks(TransactionInstance, bad)
    assert any(col == column and check in chk for col, chk in failures), failures


def test_instances_reject_duplicate_ids(instances):
    bad = instances.assign(transaction_id=[7, 7])
    assert ("transaction_id", "field_uniqueness") in failed_checks(TransactionInstance, bad)


def test_instances_reject_cross_column_violations(instances):
    bad = instances.copy()
    bad.loc[0, "tx_count_1h"] = 5  # more payments in 1h than in 24h
    bad.loc[1, "hour_of_day"] = 4  # event_time is 03:12
    failures = {chk for _, chk in failed_checks(TransactionInstance, bad)}
    assert {"velocity_windows_nest", "hour_matches_event_time"} <= failures


def test_instances_are_strict(instances):
    assert ("<frame>", "column_in_schema") in failed_checks(
        TransactionInstance, instances.assign(extra=1)
    )
    assert ("<frame>", "column_in_dataframe") in failed_checks(
        TransactionInstance, instances.drop(columns="amount")
    )


def test_labels_valid_and_cross_column_checks(labels):
    FraudLabel.validate(labels)
    bad = labels.copy()
    bad.loc[0, "label_time"] = pd.Timestamp("2025-06-01")  # before the payment
    bad.loc[1, "label_source"] = "matured"  # fraud must come from a chargeback
    failures = {chk for _, chk in failed_checks(FraudLabel, bad)}
    assert {"label_not_before_event", "source_matches_label"} <= failures


def decisions_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [1, 2, 3],
            "score": [0.01, 0.2, 0.95],
            "event_time": pd.Timestamp("2025-06-01"),
            "decision": ["approve", "review", "decline"],
            "review_threshold": 0.05,
            "decline_threshold": 0.8,
            "model_name": "fraud-detector",
            "model_version": "3",
            "scored_at": pd.Timestamp("2025-06-02"),
            "user_app_version": "0.1.0",
        }
    )


def test_decisions_must_follow_their_thresholds():
    FraudDecision.validate(decisions_frame())
    bad = decisions_frame()
    bad.loc[2, "decision"] = "approve"
    assert ("<frame>", "decision_follows_thresholds") in failed_checks(FraudDecision, bad)
    assert ("score", "less_than_or_equal_to(1.0)") in failed_checks(
        FraudScore, bad[["transaction_id", "score"]].assign(score=[0.1, 0.2, 1.5])
    )


def test_prediction_log_counts_must_add_up():
    log = pd.DataFrame(
        {
            "request_id": ["a"],
            "channel": ["batch"],
            "model_name": ["fraud-detector"],
            "model_version": ["1"],
            "model_run_id": ["abc"],
            "scored_at": [pd.Timestamp("2025-06-02")],
            "n_rows": [10],
            "latency_ms": [3.5],
            "n_approve": [8],
            "n_review": [1],
            "n_decline": [0],
            "user_app_version": ["0.1.0"],
        }
    )
    assert ("<frame>", "decision_counts_add_up") in failed_checks(PredictionLog, log)


@pytest.mark.parametrize("unit", ["ns", "us", "s"])
def test_row_rules_on_numpy_columns_equal_the_pandas_expressions(unit):
    """The row rules compare numpy arrays when the columns hold numpy numbers and naive
    datetimes (pandas' per-operation cost dominates a one-row online check): the same verdict
    per row as the pandas expressions, including NaN, NaT and times before 1970."""
    times = pd.Series(
        pd.to_datetime(
            ["1969-12-31 23:30", "2025-03-01 05:59:59.999", None, "1900-01-01 13:00", "2262-04-11"],
            format="mixed",
        )
    ).dt.as_unit(unit)
    frame = pd.DataFrame(
        {
            "event_time": times,
            "hour_of_day": [23, 5, 16, 12, 0],
            "tx_count_1h": [0, 2, 1, 3, 5],
            "tx_count_24h": [0, 1, 1, 3, 6],
            "tx_count_7d": [1, 1, 0, 3, float("nan")],
        }
    )
    hours = TransactionInstance._hour_matches_event_time(frame)
    pd.testing.assert_series_equal(hours, frame["hour_of_day"] == frame["event_time"].dt.hour)
    nest = TransactionInstance._velocity_windows_nest(frame)
    c1, c24, c7 = frame["tx_count_1h"], frame["tx_count_24h"], frame["tx_count_7d"]
    pd.testing.assert_series_equal(nest, (c1 <= c24) & (c24 <= c7))
    assert nest.tolist() == [True, False, False, True, False]
    assert hours.tolist() == [True, True, False, False, True]


def test_payment_requests_are_the_instances_own_payment_columns():
    """One definition of a valid amount, category or country: each PaymentRequest column has
    TransactionInstance's type, nullability and checks."""
    request, instance = PaymentRequest.to_schema(), TransactionInstance.to_schema()
    assert list(request.columns) == list(instance.columns)[: len(request.columns)]
    for name, column in request.columns.items():
        theirs = instance.columns[name]
        assert (str(column.dtype), column.nullable, column.unique) == (
            str(theirs.dtype),
            theirs.nullable,
            theirs.unique,
        ), name
        assert [c.name for c in column.checks] == [c.name for c in theirs.checks], name
        assert [c.statistics for c in column.checks] == [c.statistics for c in theirs.checks]


def test_payment_request_example_is_valid_and_coerced():
    payments = payment_request_example()
    out = PaymentRequest.validate(payments.astype({"amount": "string", "card_id": "float64"}))
    assert out["amount"].dtype == "float64"
    assert out["card_id"].dtype == "int64"


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("amount", -2.0, "greater_than_or_equal_to(0.0)"),
        ("amount", float("inf"), "less_than_or_equal_to(100000.0)"),
        ("amount", float("nan"), "not_nullable"),
        ("merchant_category", "casino", "isin"),
        ("merchant_country", "usa", "str_matches"),
        ("transaction_id", -1, "greater_than_or_equal_to(0)"),
        ("card_id", None, "not_nullable"),
        ("event_time", "yesterday", "coerce_dtype"),
    ],
)
def test_payment_requests_reject_bad_values(column, value, check):
    bad = payment_request_example().astype({column: object})
    bad.loc[0, column] = value
    failures = failed_checks(PaymentRequest, bad)
    assert any(col == column and check in chk for col, chk in failures), failures


def test_payment_requests_are_strict_and_unique():
    payments = payment_request_example()
    assert ("<frame>", "column_in_schema") in failed_checks(
        PaymentRequest, payments.assign(is_foreign=True)
    )
    assert ("<frame>", "column_in_dataframe") in failed_checks(
        PaymentRequest, payments.drop(columns="merchant_id")
    )
    assert ("transaction_id", "field_uniqueness") in failed_checks(
        PaymentRequest, payments.assign(transaction_id=[7, 7])
    )
