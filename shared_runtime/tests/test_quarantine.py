"""split_valid_rows never loses a row and says why each rejected row was rejected."""

import hypothesis.strategies as st
import pandas as pd
import pandera.errors
import pytest
from hypothesis import HealthCheck, given, settings

from shared_runtime.quarantine import FAILED_CHECKS, RejectRatioExceeded, split_valid_rows
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.examples import transaction_instance_example

CORRUPTIONS = {
    "negative_amount": ("amount", -1.0),
    "null_card": ("card_id", None),
    "unknown_category": ("merchant_category", "casino"),
    "bad_hour": ("hour_of_day", 99),
    "text_amount": ("amount", "twelve"),
}


def many_instances(n: int) -> pd.DataFrame:
    base = transaction_instance_example()
    frame = pd.concat([base] * (n // 2), ignore_index=True)
    return frame.assign(transaction_id=range(len(frame)))


def test_clean_batch_passes_whole():
    valid, rejected, report = split_valid_rows(many_instances(10), TransactionInstance)
    assert (len(valid), len(rejected), report.rows_rejected) == (10, 0, 0)


def test_rejected_rows_carry_their_failed_checks():
    frame = many_instances(6).astype({"amount": object})
    frame.loc[1, "amount"] = -1.0
    frame.loc[4, "merchant_category"] = "casino"
    frame.loc[4, "tx_count_1h"] = 50  # also breaks the row rule velocity_windows_nest
    valid, rejected, report = split_valid_rows(frame, TransactionInstance)
    assert len(valid) == 4
    by_id = dict(zip(rejected["transaction_id"], rejected[FAILED_CHECKS], strict=True))
    assert by_id["1"] == "amount:greater_than_or_equal_to(0.0)"
    assert set(by_id["4"].split(";")) == {
        "merchant_category:isin(('grocery', 'restaurant', 'fuel', 'apparel', 'electronics', "
        "'travel', 'online_services', 'entertainment', 'health', 'jewelry'))",
        "<row>:velocity_windows_nest",
    }
    assert report.failures_by_check["<row>:velocity_windows_nest"] == 1
    assert "6 rows in, 4 valid, 2 quarantined" in report.summary()


def test_duplicates_are_all_quarantined():
    frame = many_instances(4).assign(transaction_id=[1, 2, 2, 3])
    valid, rejected, _ = split_valid_rows(frame, TransactionInstance)
    assert sorted(valid["transaction_id"]) == [1, 3]
    assert list(rejected["transaction_id"]) == ["2", "2"]


def test_reject_ratio_limit_fails_loudly():
    frame = many_instances(10).astype({"amount": object})
    frame.loc[[0, 1, 2], "amount"] = -1.0
    expected = r"30\.00%.*exceeds the allowed reject ratio 5\.00%"
    with pytest.raises(RejectRatioExceeded, match=expected):
        split_valid_rows(frame, TransactionInstance, max_reject_ratio=0.05)


def test_table_level_problems_are_not_quarantined_row_by_row():
    with pytest.raises(pandera.errors.SchemaErrors):
        split_valid_rows(many_instances(4).drop(columns="amount"), TransactionInstance)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=2, max_value=30).map(lambda n: n * 2),
    corruptions=st.lists(
        st.tuples(st.integers(min_value=0, max_value=59), st.sampled_from(sorted(CORRUPTIONS))),
        max_size=12,
    ),
)
def test_no_row_is_ever_lost(n, corruptions):
    frame = many_instances(n).astype(object)
    expected_bad = set()
    for row, kind in corruptions:
        if row < n:
            column, value = CORRUPTIONS[kind]
            frame.loc[row, column] = value
            expected_bad.add(row)
    valid, rejected, report = split_valid_rows(frame, TransactionInstance)
    assert report.rows_in == len(valid) + len(rejected) == n
    assert set(rejected["transaction_id"].astype(int)) == expected_bad
    assert rejected[FAILED_CHECKS].str.len().gt(0).all()
    TransactionInstance.validate(valid)
