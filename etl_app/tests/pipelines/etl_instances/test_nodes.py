import duckdb
import pandas as pd
import pytest

from etl_app.pipelines.etl_instances.features import feature_sql
from etl_app.pipelines.etl_instances.nodes import (
    build_point_in_time_features,
    screen_payments,
    split_instances,
)
from shared_runtime.quarantine import RejectRatioExceeded
from shared_schemas.etl_to_ml import TransactionInstance
from tests.conftest import chargebacks_frame, payments_frame

BOUNDS = {"earliest": "2025-01-01", "clock": "2025-12-31", "clock_tolerance_minutes": 10}
PARAMS = {"lookback_days": 60, "max_reject_ratio": 0.5, "event_time": BOUNDS}


def etl(window, history, chargebacks, params=PARAMS):
    """The etl_instances nodes in order: (published rows, quarantined rows, report, features)."""
    payments, cbs, screened_out, counts = screen_payments(window, history, chargebacks, params)
    features = build_point_in_time_features(payments, cbs, params)
    valid, rejected, report = split_instances(features, screened_out, counts, params)
    return valid, rejected, report, features


def features_for(payments, chargebacks, start, end, lookback_days=60):
    t = pd.to_datetime(payments["event_time"])
    window = payments[(t >= start) & (t < end)]
    history = payments[(t >= start - pd.Timedelta(days=lookback_days)) & (t < start)]
    cbs = chargebacks[pd.to_datetime(chargebacks["received_at"]) < end]
    return etl(window, history, cbs, {**PARAMS, "lookback_days": lookback_days})[3]


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
    cbs = pd.DataFrame(
        {"transaction_id": [99], "merchant_id": [1], "received_at": ["2025-03-01 11:00"]}
    )
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


def test_hot_windows_count_a_burst_minutes_apart():
    """5/15-minute card windows and the merchant's 10-minute window end 1 s before the payment:
    a payment in the same second is not seen, one exactly 5 (15, 10) minutes earlier is."""
    burst = card_history().assign(
        event_time=pd.to_datetime(
            [
                "2025-03-01 10:00:00",
                "2025-03-01 10:03:00",
                "2025-03-01 10:05:00",
                "2025-03-01 10:05:00",  # the same second as the previous payment
                "2025-03-01 10:15:00",
            ]
        ),
        merchant_id=[1, 1, 1, 2, 1],
    )
    no_cbs = pd.DataFrame({"transaction_id": [], "merchant_id": [], "received_at": []})
    f = features_for(burst, no_cbs, pd.Timestamp("2025-03-01"), pd.Timestamp("2025-03-02"))
    f = f.set_index("transaction_id")
    assert f["tx_count_5m"].tolist() == [0, 1, 2, 2, 0]
    assert f["tx_count_15m"].tolist() == [0, 1, 2, 2, 4]
    assert f["tx_count_1h"].tolist() == [0, 1, 2, 2, 4]
    assert f["merchant_tx_10m"].tolist() == [0, 1, 2, 0, 1]
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


def corrupted_window(world) -> pd.DataFrame:
    payments = payments_frame(world)
    window = payments[payments["event_time"] >= "2025-02-01"].head(2000).astype(object)
    window.iloc[0, window.columns.get_loc("amount")] = -12.0
    window.iloc[1, window.columns.get_loc("card_id")] = None
    window.iloc[2, window.columns.get_loc("merchant_category")] = "casino"
    window.iloc[3, window.columns.get_loc("event_time")] = "not a time"
    window.iloc[4, window.columns.get_loc("amount")] = "12,50"
    window.iloc[5, window.columns.get_loc("amount")] = 1e12  # over MAX_AMOUNT
    window.iloc[6, window.columns.get_loc("card_id")] = "abc"  # wrong type
    window.iloc[7, window.columns.get_loc("event_time")] = "1970-01-01 00:00:00"
    window.iloc[8, window.columns.get_loc("event_time")] = "2100-01-01 00:00:00"
    return window


def test_bad_source_rows_are_quarantined_and_none_lost(world):
    window = corrupted_window(world)
    exact_copy = window.iloc[[20]]
    conflicting = window.iloc[[30]].assign(amount=999.0)  # same id, other content
    window = pd.concat([window, exact_copy, conflicting], ignore_index=True)
    valid, rejected, report, _ = etl(window, window.head(0), chargebacks_frame(world))
    assert report["exact_duplicates_dropped"] == 1
    assert report["rows_in"] == len(window) - 1 == len(valid) + len(rejected)
    # 9 corrupted rows + both rows claiming transaction 30's id
    assert report["rows_quarantined"] == 11
    assert window.iloc[20]["transaction_id"] in set(valid["transaction_id"])  # the original
    checks = ";".join(rejected["failed_checks"])
    for expected in (
        "amount:greater_than_or_equal_to",
        "amount:less_than_or_equal_to",
        "card_id:",
        "merchant_category:isin",
        "event_time:coerce_dtype",
        "event_time:plausible_event_time",
        "transaction_id:conflicting_duplicate",
    ):
        assert expected in checks
    assert report["failures_by_check"]["event_time:plausible_event_time"] == 2
    # rejected rows keep what the source sent, as text
    assert {"12,50", "abc", "not a time", "1970-01-01 00:00:00"} <= set(
        rejected.astype(str).stack()
    )


def test_quarantined_rows_feed_no_feature(world):
    """Features of the good payments are the same with or without the bad rows beside them."""
    clean = payments_frame(world)
    clean = clean[clean["event_time"] >= "2025-02-01"].head(3000)
    target = clean.iloc[100]  # pile bad rows onto this payment's card and merchant
    bad = pd.DataFrame([target] * 6).astype(object)
    bad["transaction_id"] = [10**9 + i for i in range(6)]
    bad["event_time"] = target["event_time"] - pd.Timedelta(minutes=5)
    bad.iloc[0, bad.columns.get_loc("merchant_category")] = "casino"
    bad.iloc[1, bad.columns.get_loc("amount")] = 1e12
    bad.iloc[2, bad.columns.get_loc("event_time")] = "1970-01-01"
    bad.iloc[3, bad.columns.get_loc("merchant_country")] = "usa"
    bad.iloc[4:6, bad.columns.get_loc("transaction_id")] = 10**9 + 99  # conflicting pair
    bad.iloc[5, bad.columns.get_loc("amount")] = 1.0
    cbs = chargebacks_frame(world)
    alone, _, _, _ = etl(clean, clean.head(0), cbs)
    mixed, rejected, report, _ = etl(pd.concat([clean, bad]), clean.head(0), cbs)
    assert report["rows_quarantined"] == len(rejected) == 6
    pd.testing.assert_frame_equal(alone, mixed, check_exact=True)


def test_timestamps_in_any_iso_form_are_normalised_to_naive_utc(world):
    payments = payments_frame(world)
    window = payments[payments["event_time"] >= "2025-02-01"].head(50).astype(object)
    plain = window.copy()
    plain["event_time"] = pd.to_datetime(plain["event_time"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    offsets = plain.copy()
    utc = pd.to_datetime(plain["event_time"])
    offsets.iloc[0, offsets.columns.get_loc("event_time")] = (
        utc.iloc[0] + pd.Timedelta(hours=5)
    ).strftime("%Y-%m-%d %H:%M:%S+05:00")
    offsets.iloc[1, offsets.columns.get_loc("event_time")] = utc.iloc[1].strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    offsets.iloc[2, offsets.columns.get_loc("event_time")] = (
        utc.iloc[2] - pd.Timedelta(hours=3)
    ).isoformat() + "-03:00"
    cbs = chargebacks_frame(world)
    expected, _, _, _ = etl(plain, plain.head(0), cbs)
    valid, rejected, _, _ = etl(offsets, offsets.head(0), cbs)
    assert rejected.empty
    assert str(valid["event_time"].dtype).startswith("datetime64")
    assert valid["event_time"].dt.tz is None
    pd.testing.assert_frame_equal(valid, expected, check_exact=True)


def test_features_are_the_same_bits_whatever_the_threads_or_row_order(world):
    payments, chargebacks = payments_frame(world), chargebacks_frame(world)
    screened, cbs, _, _ = screen_payments(
        payments[payments["event_time"] >= "2025-01-20"],
        payments[payments["event_time"] < "2025-01-20"],
        chargebacks,
        PARAMS,
    )
    screened = screened.reset_index(drop=True)
    screened.insert(0, "_row", range(len(screened)))

    def run(frame, threads):
        with duckdb.connect() as con:
            con.execute(f"SET threads = {threads}")
            con.register("payments", frame)
            con.register("chargebacks", cbs)
            return con.sql(feature_sql(60)).df().sort_values("_row", ignore_index=True)

    one = run(screened, 1)
    shuffled = screened.sample(frac=1.0, random_state=7)
    for other in (run(screened, 4), run(shuffled, 4), run(shuffled, 2)):
        pd.testing.assert_frame_equal(one, other, check_exact=True)
    # money is exact: a sum of cents, not of binary fractions
    cents = (one["amount_sum_7d"] * 100).round()
    assert ((cents / 100.0) == one["amount_sum_7d"]).all()


def test_too_many_bad_rows_fail_the_run(world):
    payments = payments_frame(world)
    window = payments.head(100).assign(amount=-1.0)
    with pytest.raises(RejectRatioExceeded, match="nothing was published"):
        etl(
            window, payments.head(0), chargebacks_frame(world), {**PARAMS, "max_reject_ratio": 0.01}
        )
