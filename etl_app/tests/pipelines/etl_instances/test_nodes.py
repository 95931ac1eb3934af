import pandas as pd
import pytest

from etl_app.pipelines.etl_instances.nodes import build_point_in_time_features, split_instances
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.quarantine import RejectRatioExceeded
from tests.conftest import chargebacks_frame, payments_frame

PARAMS = {"lookback_days": 60, "max_reject_ratio": 0.5}


def features_for(payments, chargebacks, start, end, lookback_days=60):
    t = pd.to_datetime(payments["event_time"])
    window = payments[(t >= start) & (t < end)]
    history = payments[(t >= start - pd.Timedelta(days=lookback_days)) & (t < start)]
    cbs = chargebacks[pd.to_datetime(chargebacks["received_at"]) < end]
    return build_point_in_time_features(
        window, history, cbs, {**PARAMS, "lookback_days": lookback_days}
    )


def card_history() -> pd.DataFrame:
    times = [
        "2025-03-01 10:00",
        "2025-03-01 10:20",
        "2025-03-01 10:50",
        "2025-03-01 12:00",
        "2025-03-02 09:00",
    ]
    return pd.DataFrame(
        {
            "transaction_id": range(1, 6),
            "card_id": 7,
            "customer_id": 3,
            "merchant_id": [1, 1, 2, 1, 3],
            "amount": [10.0, 20.0, 30.0, 40.0, 1000.0],
            "event_time": pd.to_datetime(times),
            "merchant_category": "grocery",
            "merchant_country": ["US", "US", "US", "US", "NG"],
            "home_country": "US",
        }
    )


def test_features_use_only_strictly_earlier_payments():
    cbs = pd.DataFrame({"merchant_id": [1], "received_at": pd.to_datetime(["2025-03-01 11:00"])})
    f = features_for(card_history(), cbs, pd.Timestamp("2025-03-01"), pd.Timestamp("2025-03-03"))
    f = f.set_index("transaction_id")
    assert f["tx_count_1h"].tolist() == [0, 1, 2, 0, 0]
    assert f["tx_count_24h"].tolist() == [0, 1, 2, 3, 4]
    assert f["amount_sum_1h"].tolist() == [0.0, 10.0, 30.0, 0.0, 0.0]
    assert f["seconds_since_prev_tx"].isna().iloc[0]
    assert f.loc[2, "seconds_since_prev_tx"] == 20 * 60
    assert f["is_new_merchant"].tolist() == [True, False, True, False, True]
    assert f["is_new_country"].tolist() == [True, False, False, False, True]
    assert f.loc[5, "amount_to_median_ratio"] == pytest.approx(1000.0 / 25.0)
    assert f.loc[5, "is_foreign"]
    # the chargeback received at 11:00 counts only for later payments at merchant 1
    assert f["merchant_chargebacks_30d"].tolist() == [0, 0, 0, 1, 0]
    assert f.loc[4, "merchant_tx_30d"] == 2
    TransactionInstance.validate(f.reset_index())


def test_no_leakage_future_data_never_changes_a_feature(world):
    """Features of payments before a cutoff are identical with or without later data."""
    payments, chargebacks = payments_frame(world), chargebacks_frame(world)
    start, cutoff = pd.Timestamp("2025-01-20"), pd.Timestamp("2025-02-05")
    full = features_for(payments, chargebacks, start, pd.Timestamp("2025-02-15"))
    known = features_for(
        payments[payments["event_time"] < cutoff],
        chargebacks[chargebacks["received_at"] < cutoff],
        start,
        cutoff,
    )
    before = full[full["event_time"] < cutoff].reset_index(drop=True)
    assert len(before) == len(known) > 1000
    pd.testing.assert_frame_equal(before, known.reset_index(drop=True))


def test_window_boundaries_do_not_change_features(world):
    """The same payment gets the same features whichever window publishes it."""
    payments, chargebacks = payments_frame(world), chargebacks_frame(world)
    one = features_for(
        payments, chargebacks, pd.Timestamp("2025-01-25"), pd.Timestamp("2025-02-10")
    )
    two = features_for(
        payments, chargebacks, pd.Timestamp("2025-02-01"), pd.Timestamp("2025-02-10")
    )
    overlap = one[one["event_time"] >= "2025-02-01"].reset_index(drop=True)
    pd.testing.assert_frame_equal(overlap, two.reset_index(drop=True))


def test_bad_source_rows_are_quarantined_and_none_lost(world):
    payments = payments_frame(world)
    window = payments[payments["event_time"] >= "2025-02-01"].head(2000).astype(object)
    window.iloc[0, window.columns.get_loc("amount")] = -12.0
    window.iloc[1, window.columns.get_loc("card_id")] = None
    window.iloc[2, window.columns.get_loc("merchant_category")] = "casino"
    window.iloc[3, window.columns.get_loc("event_time")] = "not a time"
    window.iloc[4, window.columns.get_loc("amount")] = "12,50"
    window.iloc[5, window.columns.get_loc("amount")] = 1e12  # over MAX_AMOUNT
    window.iloc[6, window.columns.get_loc("card_id")] = "abc"  # wrong type
    duplicate = window.iloc[[7]]
    window = pd.concat([window, duplicate], ignore_index=True)
    f = build_point_in_time_features(window, payments.head(0), chargebacks_frame(world), PARAMS)
    assert len(f) == len(window)  # one feature row per extracted payment
    valid, rejected, report = split_instances(f, PARAMS)
    assert report["rows_in"] == len(window) == len(valid) + len(rejected)
    assert report["rows_quarantined"] == 9  # 7 corrupted rows + both copies of the duplicate
    checks = ";".join(rejected["failed_checks"])
    for expected in (
        "amount:greater_than_or_equal_to",
        "amount:less_than_or_equal_to",
        "card_id:",
        "merchant_category:isin",
        "event_time:",
        "transaction_id:field_uniqueness",
    ):
        assert expected in checks


def test_too_many_bad_rows_fail_the_run(world):
    payments = payments_frame(world)
    window = payments.head(100).assign(amount=-1.0)
    f = build_point_in_time_features(window, payments.head(0), chargebacks_frame(world), PARAMS)
    with pytest.raises(RejectRatioExceeded, match="nothing was published"):
        split_instances(f, {"max_reject_ratio": 0.01})
