"""FastContract agrees with pandera: same accepted frames, same errors, on random inputs."""

import math

import hypothesis.strategies as st
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from shared_runtime.enforce import ContractViolation, enforce
from shared_runtime.fast import FastContract
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.examples import transaction_instance_example

FAST = FastContract(TransactionInstance)
COLUMNS = list(TransactionInstance.to_schema().columns)
ODD_VALUES = [
    None,
    math.nan,
    math.inf,
    -math.inf,
    -1,
    0,
    1.5,
    23,
    1e12,
    -(2**63),
    2**64,
    True,
    "",
    "x",
    "US",
    "us",
    "casino",
    "grocery",
    "2025-06-03T12:00:00",
    "not a date",
    [1],
]


def outcome(validate, frame: pd.DataFrame):
    """('ok', frame) or ('violation', message) or ('error', type): what a caller would see."""
    try:
        return "ok", validate(frame.copy())
    except ContractViolation as exc:
        return "violation", str(exc)
    except Exception as exc:  # the test compares whatever happens
        return "error", type(exc).__name__


def assert_same(frame: pd.DataFrame) -> None:
    expected = outcome(lambda f: enforce(f, TransactionInstance), frame)
    actual = outcome(FAST.validate, frame)
    assert actual[0] == expected[0], (actual, expected)
    if expected[0] == "ok":
        pd.testing.assert_frame_equal(actual[1], expected[1])
    else:
        assert actual[1] == expected[1]


def test_valid_rows_take_the_fast_path_and_match_pandera():
    frame = transaction_instance_example()
    assert FAST.fast_path(frame) is not None  # the fast path accepted it: pandera was not called
    assert_same(frame)
    assert_same(frame.head(1))


def test_a_failure_is_explained_by_pandera():
    frame = transaction_instance_example().assign(amount=[-2.0, 5.0])
    with pytest.raises(ContractViolation, match=r"amount: greater_than_or_equal_to\(0.0\)"):
        FAST.validate(frame)


def test_row_rules_are_checked():
    frame = transaction_instance_example().assign(tx_count_1h=[0, 50])
    assert FAST.fast_path(frame) is None
    with pytest.raises(ContractViolation, match="velocity_windows_nest"):
        FAST.validate(frame)


@st.composite
def mutated_frames(draw) -> pd.DataFrame:
    frame = transaction_instance_example()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "drop", "extra", "duplicate_id", "dtype"]))
        column = draw(st.sampled_from(COLUMNS))
        if kind == "value" and column in frame:
            row = draw(st.integers(0, len(frame) - 1))
            value = draw(st.sampled_from(ODD_VALUES))
            frame[column] = frame[column].astype(object)
            frame.at[row, column] = value
        elif kind == "drop" and column in frame:
            frame = frame.drop(columns=column)
        elif kind == "extra":
            frame["unexpected"] = 1
        elif kind == "duplicate_id":
            frame["transaction_id"] = 7
        elif kind == "dtype" and column in frame:
            frame[column] = frame[column].astype(str)
    return frame


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_frames())
def test_fast_path_never_disagrees_with_pandera(frame):
    assert_same(frame)
