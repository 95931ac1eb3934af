"""FastContract agrees with pandera: same accepted frames, same coerced output, same failed checks.

Proven on random inputs for every contract in shared_schemas (the apps use it with
TransactionInstance: user_app's online service and ml_app's inference node), on both ways it reads
columns (one object block for small frames, typed arrays for larger ones), and on contracts with
checks it cannot compile, which it must hand to pandera at call time.
"""

import math

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from pandera.engines import pandas_engine
from pandera.typing import Index, Series

from shared_runtime.enforce import ContractViolation, enforce
from shared_runtime.fast import FastContract
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.examples import transaction_instance_example
from shared_schemas.export import CONTRACTS
from shared_schemas.strategies import contract_frames

ALL_CONTRACTS = [model for models in CONTRACTS.values() for model in models]
FAST = FastContract(TransactionInstance)
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
    "approve",
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


def assert_same(model, frame: pd.DataFrame, *fasts: FastContract) -> str:
    """Every FastContract behaves exactly like pandera on ``frame``; returns pandera's verdict."""
    expected = outcome(lambda f: enforce(f, model), frame)
    for fast in fasts or (FastContract(model),):
        actual = outcome(fast.validate, frame)
        assert actual[0] == expected[0], (fast, actual, expected)
        if expected[0] == "ok":
            pd.testing.assert_frame_equal(actual[1], expected[1])
        else:
            assert actual[1] == expected[1]  # the same failed checks, counts and examples
    return expected[0]


def test_valid_rows_take_the_fast_path_and_match_pandera():
    frame = transaction_instance_example()
    assert FAST.pandera_only is None
    assert FAST.fast_path(frame) is not None  # the fast path accepted it: pandera was not called
    assert_same(TransactionInstance, frame, FAST)
    assert_same(TransactionInstance, frame.head(1), FAST)


def test_a_failure_is_explained_by_pandera():
    frame = transaction_instance_example().assign(amount=[-2.0, 5.0])
    with pytest.raises(ContractViolation, match=r"amount: greater_than_or_equal_to\(0.0\)"):
        FAST.validate(frame)


def test_row_rules_are_checked():
    frame = transaction_instance_example().assign(tx_count_1h=[0, 50])
    assert FAST.fast_path(frame) is None
    with pytest.raises(ContractViolation, match="velocity_windows_nest"):
        FAST.validate(frame)


def test_types_are_coerced_only_where_the_contract_coerces():
    class Loose(pa.DataFrameModel):
        n: Series[int]
        x: Series[float] = pa.Field(coerce=True)

        class Config:
            strict = True

    text_x = pd.DataFrame({"n": [1, 2], "x": ["1.5", "2"]})
    text_n = pd.DataFrame({"n": ["1", "2"], "x": [1.5, 2.0]})
    assert FastContract(Loose).fast_path(text_x)["x"].tolist() == [1.5, 2.0]
    assert FastContract(Loose).fast_path(text_n) is None  # n does not coerce: pandera refuses
    assert assert_same(Loose, text_x) == "ok"
    assert assert_same(Loose, text_n) == "violation"


@pytest.mark.parametrize("coerce", [False, True])
@pytest.mark.parametrize("dtype", [str, pandas_engine.NpString])
def test_mixed_int_and_str_values_in_a_str_column_are_judged_like_pandera(dtype, coerce):
    """An object column of a str contract column is only valid when every non-null value is a
    str: an int among them is refused, or coerced to str where the contract coerces."""

    class Text(pa.DataFrameModel):
        s: Series[dtype] = pa.Field(coerce=coerce, nullable=True)

    mixed = pd.DataFrame({"s": pd.Series(["a", 1, None], dtype=object)})
    verdict = assert_same(Text, mixed)
    assert verdict == ("ok" if coerce else "violation")
    if not coerce:
        assert FastContract(Text).fast_path(mixed) is None
    texts = pd.DataFrame({"s": pd.Series(["a", "b", None], dtype=object)})
    assert assert_same(Text, texts) == "ok"


@st.composite
def mutated(draw, model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """A frame drawn valid-ish from the contract, then broken in 0-3 random ways."""
    frame = draw(contract_frames(model, size=draw(st.integers(1, 4)))).reset_index(drop=True)
    columns = list(model.to_schema().columns)
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["value", "drop", "extra", "constant", "text", "null"]))
        column = draw(st.sampled_from(columns))
        if column not in frame or frame.empty:
            continue
        if kind == "value":
            row = draw(st.integers(0, len(frame) - 1))
            frame[column] = frame[column].astype(object)
            frame.at[row, column] = draw(st.sampled_from(ODD_VALUES))
        elif kind == "drop":
            frame = frame.drop(columns=column)
        elif kind == "extra":
            frame["unexpected"] = 1
        elif kind == "constant":  # duplicates a key
            frame[column] = frame[column].iloc[0]
        elif kind == "text":
            frame[column] = frame[column].astype(str)
        elif kind == "null":
            frame[column] = frame[column].astype(object).where(frame.index != 0, None)
    return frame


@pytest.mark.parametrize("model", ALL_CONTRACTS, ids=lambda m: m.__name__)
def test_fast_contract_equals_pandera_on_every_contract(model):
    fasts = (FastContract(model), FastContract(model, small_frame=0))
    assert all(fast.pandera_only is None for fast in fasts)  # every contract takes the fast path

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(mutated(model))
    def check(frame):
        verdict = assert_same(model, frame, *fasts)
        verdicts.append(verdict)
        if verdict == "ok":
            fast_accepted.append(all(fast.fast_path(frame) is not None for fast in fasts))

    verdicts, fast_accepted = [], []
    check()
    assert "ok" in verdicts and "violation" in verdicts, verdicts  # both verdicts were compared
    assert any(fast_accepted), "pandera accepted frames only the fallback accepted: no evidence"


CELL_VALUES = [None, math.nan, math.inf, -1, 0, 1.5, 2**64, True, "", "x", "not a date", [1]]


@pytest.mark.parametrize("model", ALL_CONTRACTS, ids=lambda m: m.__name__)
def test_every_single_cell_change_is_judged_like_pandera(model):
    """One odd value in one cell of a valid frame, for every column: nothing else can hide it."""
    fasts = (FastContract(model), FastContract(model, small_frame=0))

    @settings(
        max_examples=1,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # one sweep is the test; shrinking would repeat it
        suppress_health_check=list(HealthCheck),
    )
    @given(contract_frames(model, size=2).filter(lambda df: enforce_ok(model, df)))
    def sweep(base):
        base = base.reset_index(drop=True)
        assert assert_same(model, base, *fasts) == "ok"
        for column in base.columns:
            for value in CELL_VALUES:
                frame = base.astype({column: object})
                frame.at[len(frame) - 1, column] = value
                assert_same(model, frame, *fasts)
            assert_same(model, base.astype({column: str}), *fasts)

    sweep()


def enforce_ok(model, frame: pd.DataFrame) -> bool:
    return outcome(lambda f: enforce(f, model), frame)[0] == "ok"


# --- checks the fast path cannot compile: pandera runs them at call time ---------------------


class WithCustomChecks(pa.DataFrameModel):
    key: Series[int] = pa.Field(unique=True, ge=0)
    amount: Series[float] = pa.Field(nullable=True)
    code: Series[str]

    # named like a built-in, with its statistics, but not pandera's greater_than: must not be
    # compiled as one
    @pa.check("amount", name="greater_than", statistics={"min_value": 0.0})
    @classmethod
    def impostor(cls, amount: Series[float]) -> Series[bool]:
        return amount < 5

    @pa.check("code", element_wise=True, name="upper_case")
    @classmethod
    def upper_case(cls, code: str) -> bool:
        return code.isupper()

    @pa.check("code", ignore_na=False, name="short")
    @classmethod
    def short(cls, code: Series[str]) -> Series[bool]:
        return code.str.len() <= 3

    @pa.check("amount", name="finite")
    @classmethod
    def finite(cls, amount: Series[float]) -> Series[bool]:
        return pd.Series(np.isfinite(amount.to_numpy(dtype=float)), index=amount.index)

    @pa.dataframe_check(name="amount_below_key_plus_one")
    @classmethod
    def amount_below_key(cls, df: pd.DataFrame) -> Series[bool]:
        return df["amount"].isna() | (df["amount"] <= df["key"] + 1)

    class Config:
        strict = True
        coerce = True
        name = "WithCustomChecks"


class Indexed(WithCustomChecks):
    idx: Index[int] = pa.Field(ge=0)


def test_uncompiled_checks_never_fail_construction_and_run_at_call_time():
    fast = FastContract(WithCustomChecks)
    assert fast.pandera_only is None  # the rest still takes the fast path
    ok = pd.DataFrame({"key": [1, 2], "amount": [1.0, None], "code": ["AB", "C"]})
    assert fast.fast_path(ok) is not None
    # passes the real greater_than(0.0) but not the custom check wearing its name
    impostor = ok.assign(key=[10, 11], amount=[7.0, 1.0])
    assert fast.fast_path(impostor) is None
    with pytest.raises(ContractViolation, match="greater_than"):
        fast.validate(impostor)
    with pytest.raises(ContractViolation, match="upper_case"):
        fast.validate(ok.assign(code=["ab", "C"]))
    assert FastContract(Indexed).pandera_only == "an index schema"


CUSTOM_VALUES = st.one_of(
    st.integers(-2, 12), st.floats(allow_nan=True), st.none(), st.sampled_from(["AB", "x", "ABCD"])
)


@st.composite
def custom_frames(draw) -> pd.DataFrame:
    rows = draw(st.integers(0, 5))
    columns = {
        "key": draw(st.lists(st.integers(-1, 6), min_size=rows, max_size=rows)),
        "amount": draw(st.lists(st.floats(-1, 9) | st.none(), min_size=rows, max_size=rows)),
        "code": draw(
            st.lists(st.sampled_from(["AB", "C", "ab", "ABCD"]), min_size=rows, max_size=rows)
        ),
    }
    frame = pd.DataFrame(columns)
    if rows and draw(st.booleans()):
        column = draw(st.sampled_from(list(columns)))
        frame[column] = frame[column].astype(object)
        frame.at[draw(st.integers(0, rows - 1)), column] = draw(CUSTOM_VALUES)
    return frame


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(custom_frames())
def test_fast_contract_equals_pandera_with_checks_it_cannot_compile(frame):
    fasts = (FastContract(WithCustomChecks), FastContract(WithCustomChecks, small_frame=0))
    assert_same(WithCustomChecks, frame, *fasts)
    assert_same(Indexed, frame, FastContract(Indexed))
