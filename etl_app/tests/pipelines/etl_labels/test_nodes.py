import pandas as pd

from etl_app.pipelines.etl_labels.nodes import build_labels, split_labels
from shared_schemas.etl_to_ml import FraudLabel

BOUNDS = {"earliest": "2025-01-01", "clock": "2025-12-31", "clock_tolerance_minutes": 10}
PARAMS = {"as_of": "2025-03-01", "maturity_days": 30, "max_reject_ratio": 0.0, "event_time": BOUNDS}


def payments() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [1, 2, 3, 4, 5],
            "event_time": pd.to_datetime(
                ["2025-01-01", "2025-01-05", "2025-02-10", "2025-02-20", "2025-01-03"]
            ),
        }
    )


def chargebacks() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [2, 3, 5, 5],
            # 5 has two chargebacks: the first one counts; 4's would arrive after the cutoff
            "received_at": pd.to_datetime(["2025-01-20", "2025-02-25", "2025-01-15", "2025-01-18"]),
        }
    )


def test_labels_as_known_at_the_cutoff():
    late = pd.DataFrame({"transaction_id": [4], "received_at": pd.to_datetime(["2025-03-05"])})
    labels = build_labels(payments(), pd.concat([chargebacks(), late]), PARAMS)
    FraudLabel.validate(labels)
    by_id = labels.set_index("transaction_id")
    # 1: matured without chargeback -> legit, known 30 days after the payment
    assert not by_id.loc[1, "is_fraud"]
    assert by_id.loc[1, "label_time"] == pd.Timestamp("2025-01-31")
    # 2 and 5: fraud from their first chargeback; 3: fraud even though it has not matured
    assert by_id.loc[[2, 3, 5], "is_fraud"].all()
    assert by_id.loc[5, "label_time"] == pd.Timestamp("2025-01-15")
    assert set(by_id.loc[[2, 3, 5], "label_source"]) == {"chargeback"}
    # 4: young and its chargeback is not received yet -> no label at all, never "legit"
    assert 4 not in by_id.index


def test_immature_payments_are_never_labelled_legit():
    labels = build_labels(payments(), chargebacks().head(0), {**PARAMS, "maturity_days": 60})
    assert labels.empty or labels["event_time"].max() <= pd.Timestamp("2025-01-01")
    assert not labels["is_fraud"].any()


def test_a_later_cutoff_only_adds_labels_or_turns_them_into_fraud():
    early = build_labels(payments(), chargebacks(), PARAMS).set_index("transaction_id")
    later = build_labels(payments(), chargebacks(), {**PARAMS, "as_of": "2025-04-01"})
    later = later.set_index("transaction_id")
    assert set(early.index) <= set(later.index)
    assert (later.loc[early.index, "is_fraud"] >= early["is_fraud"]).all()


def test_invalid_label_rows_are_quarantined():
    rows = payments().astype({"event_time": object})
    rows.loc[0, "event_time"] = "garbage"
    labels = build_labels(rows, chargebacks(), PARAMS)
    valid, rejected, report = split_labels(labels, {**PARAMS, "max_reject_ratio": 0.5})
    assert report["rows_in"] == len(valid) + len(rejected)
    assert list(rejected["transaction_id"]) == ["1"]


def test_labels_of_implausible_or_offset_times_are_quarantined_or_normalised():
    rows = payments().astype({"event_time": object})
    first = pd.Timestamp(rows.loc[1, "event_time"])
    rows.loc[0, "event_time"] = "1970-01-01 00:00:00"  # matured long ago, but impossible
    rows.loc[1, "event_time"] = (first + pd.Timedelta(hours=2)).isoformat() + "+02:00"
    labels = build_labels(rows, chargebacks(), PARAMS)
    valid, rejected, report = split_labels(labels, {**PARAMS, "max_reject_ratio": 0.5})
    assert list(rejected["transaction_id"]) == [str(rows.loc[0, "transaction_id"])]
    assert report["failures_by_check"] == {"event_time:plausible_event_time": 1}
    normalised = valid.set_index("transaction_id").loc[rows.loc[1, "transaction_id"]]
    assert normalised["event_time"] == first
