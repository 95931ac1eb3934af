"""The compiled model computes what scikit-learn computes: a property test on random and
adversarial rows, for both model families, on both tree runtimes (GTIL and the batch path)."""

import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_app.pipelines.inference.compiled import CompiledModel, NotCompilable, compile_preprocessor
from ml_app.pipelines.training import nodes
from shared_schemas.etl_to_ml import MAX_AMOUNT, MERCHANT_CATEGORIES

TOLERANCE = 1e-9
BIG = 1e308  # the largest magnitude a contract float may have that JSON and float64 carry
INT_MAX = np.iinfo(np.int64).max


@pytest.fixture(scope="module")
def fitted(data, params):
    """Preprocessor and both classifier families, fitted on the synthetic training window."""
    instances, labels = data
    train, _ = nodes.split_by_time(instances, labels, params["training"])
    preprocessor = nodes.fit_preprocessor(train, params["training"])
    model_input = nodes.build_model_input(train, preprocessor)
    out = {}
    for family in ("hist_gradient_boosting", "logistic_regression"):
        model = {**params["training"]["model"], "family": family}
        classifier = nodes.fit_classifier(
            model_input, train, {**params["training"], "model": model}
        )
        out[family] = (preprocessor, classifier)
    return instances, out


def _float(low: float, high: float, nullable: bool) -> st.SearchStrategy:
    edges = st.sampled_from([low, high, 0.5, 1.0, np.nextafter(low, high)])
    values = st.one_of(edges, st.floats(low, high, allow_nan=False, allow_infinity=False))
    return st.one_of(st.just(np.nan), values) if nullable else values


@st.composite
def rows(draw, n_max: int = 4) -> pd.DataFrame:
    """1..n_max instances: within the contract's ranges, plus what the contract refuses but a
    preprocessor must still handle identically (unknown categories, NaN in any numeric column)."""
    n = draw(st.integers(1, n_max))
    counts = st.one_of(st.sampled_from([0, 1, INT_MAX]), st.integers(0, INT_MAX))
    adversarial = draw(st.booleans())
    category = st.sampled_from(
        [*MERCHANT_CATEGORIES, *(["casino", "", "GROCERY"] if adversarial else [])]
    )
    columns = {
        "amount": _float(0.0, MAX_AMOUNT, adversarial),
        "amount_sum_1h": _float(0.0, 50 * MAX_AMOUNT, adversarial),
        "amount_sum_24h": _float(0.0, 50 * MAX_AMOUNT, False),
        "amount_sum_7d": _float(0.0, 50 * MAX_AMOUNT, False),
        "seconds_since_prev_tx": _float(0.0, BIG, True),
        "amount_to_median_ratio": _float(0.0, BIG, True),
        "merchant_chargeback_rate_30d": _float(0.0, BIG, adversarial),
    }
    frame = {name: draw(st.lists(s, min_size=n, max_size=n)) for name, s in columns.items()}
    windows = ("tx_count_5m", "tx_count_15m", "tx_count_1h", "tx_count_24h", "tx_count_7d")
    nested = [sorted(draw(st.lists(counts, min_size=5, max_size=5))) for _ in range(n)]
    for i, name in enumerate(windows):
        frame[name] = [counts_of_row[i] for counts_of_row in nested]
    for name in ("merchant_chargebacks_30d", "merchant_tx_30d", "merchant_tx_10m"):
        frame[name] = draw(st.lists(counts, min_size=n, max_size=n))
    frame["hour_of_day"] = draw(st.lists(st.integers(0, 23), min_size=n, max_size=n))
    frame["day_of_week"] = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    for name in ("is_foreign", "is_new_merchant", "is_new_country"):
        frame[name] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    frame["merchant_category"] = draw(st.lists(category, min_size=n, max_size=n))
    frame["transaction_id"] = list(range(n))
    out = pd.DataFrame(frame)
    return out.astype({c: "int64" for c in out.columns if c.startswith(("tx_", "merchant_tx"))})


def assert_same(compiled: CompiledModel, frame: pd.DataFrame) -> None:
    sk_features = compiled.preprocessor.transform(frame).to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(compiled.features(frame), sk_features)
    try:
        want = compiled.reference_proba(frame)
    except ValueError as refused:  # e.g. a standardized 1e308 overflows: sklearn cannot score
        assert "infinity" in str(refused)
        with pytest.raises(ValueError, match="infinity"):
            compiled.predict_proba(frame)
        return
    got = compiled.predict_proba(frame)
    assert got.shape == want.shape == (len(frame),)
    assert np.max(np.abs(got - want)) <= TOLERANCE, (got, want)
    assert ((got >= 0) & (got <= 1)).all()


@pytest.mark.parametrize("family", ["hist_gradient_boosting", "logistic_regression"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=rows())
def test_compiled_scores_equal_sklearn_on_random_and_adversarial_rows(fitted, family, frame):
    _, models = fitted
    compiled = CompiledModel(*models[family])
    assert compiled.compiled
    assert_same(compiled, frame)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frame=rows(n_max=12))
def test_the_tree_batch_path_equals_sklearn_too(fitted, frame):
    _, models = fitted
    compiled = CompiledModel(*models["hist_gradient_boosting"], gtil_max_rows=2)
    assert_same(compiled, frame)  # above 2 rows: sklearn's own predictor on compiled features


def test_published_instances_score_the_same_and_the_model_pickles(fitted):
    instances, models = fitted
    for preprocessor, classifier in models.values():
        compiled = pickle.loads(pickle.dumps(CompiledModel(preprocessor, classifier)))
        assert compiled.compiled
        for batch in (instances.head(1), instances.head(200), instances):
            assert_same(compiled, batch)


def test_what_cannot_be_compiled_is_served_by_sklearn_itself(fitted):
    instances, models = fitted
    preprocessor, classifier = models["hist_gradient_boosting"]
    with pytest.raises(NotCompilable):
        compile_preprocessor(classifier)
    fallback = CompiledModel(preprocessor, classifier, enabled=False)
    assert not fallback.compiled and fallback.kind == "sklearn"
    rows_ = instances.head(50)
    np.testing.assert_array_equal(fallback.predict_proba(rows_), fallback.reference_proba(rows_))


def test_compile_model_checks_itself_against_sklearn(fitted, data, params):
    instances, labels = data
    train, _ = nodes.split_by_time(instances, labels, params["training"])
    preprocessor, classifier = fitted[1]["hist_gradient_boosting"]
    compiled = nodes.compile_model(preprocessor, classifier, train, params["training"])
    assert compiled.compiled and compiled.kind == "treelite"
    impossible = {
        **params["training"],
        "compile": {**params["training"]["compile"], "tolerance": -1},
    }
    with pytest.raises(RuntimeError, match=r"compile\.enabled=false"):
        nodes.compile_model(preprocessor, classifier, train, impossible)


def test_large_batches_with_unknown_and_missing_categories(fitted):
    instances, models = fitted
    odd = np.array(["casino", "", None, np.nan, "GROCERY", *MERCHANT_CATEGORIES], dtype=object)
    batch = instances.head(500).assign(merchant_category=np.resize(odd, 500))
    for preprocessor, classifier in models.values():
        assert_same(CompiledModel(preprocessor, classifier), batch)  # > 64 rows: hashed path
