"""Training-only nodes: split by time, fit the preprocessor and classifier, evaluate."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml_app.evaluation import policy_record, score_metrics
from ml_app.pipelines.inference.compiled import CompiledModel
from shared_runtime.policy import DecisionPolicy
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance

if TYPE_CHECKING:  # scikit-learn is imported where it is used: registering pipelines stays fast
    from sklearn.base import BaseEstimator
    from sklearn.compose import ColumnTransformer
else:  # what Kedro's type-hint extraction resolves, without importing the library
    BaseEstimator = ColumnTransformer = Any

logger = logging.getLogger(__name__)
ID = TransactionInstance.transaction_id
TIME = TransactionInstance.event_time
TARGET = FraudLabel.is_fraud


def split_by_time(
    instances: pd.DataFrame, labels: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labelled instances of the training window and of the later validation window.

    Training uses the past and validation the future, as in production; instances without a
    mature label (not in ``labels``) are left out rather than assumed legitimate.
    """
    window = params["window"]
    train_start, train_end, valid_end = (
        pd.Timestamp(window[k]) for k in ("train_start", "train_end", "valid_end")
    )
    if not train_start < train_end < valid_end:
        raise ValueError(
            f"Training window must satisfy train_start < train_end < valid_end: {window}"
        )
    labelled = instances.merge(labels[[ID, TARGET]], on=ID, how="inner", validate="one_to_one")
    t = labelled[TIME]
    train = labelled[(t >= train_start) & (t < train_end)].reset_index(drop=True)
    valid = labelled[(t >= train_end) & (t < valid_end)].reset_index(drop=True)
    for name, part in (("training", train), ("validation", valid)):
        if part.empty or part[TARGET].nunique() < 2:
            raise ValueError(
                f"The {name} window has {len(part)} labelled rows and "
                f"{int(part[TARGET].sum()) if len(part) else 0} frauds: it needs both classes. "
                f"Publish instances and labels covering {window} (etl_app: `make run-etl`)."
            )
    logger.info(
        "Training on %d rows (%d fraud) from %s to %s; validating on %d rows (%d fraud) to %s",
        len(train),
        int(train[TARGET].sum()),
        train_start.date(),
        train_end.date(),
        len(valid),
        int(valid[TARGET].sum()),
        valid_end.date(),
    )
    return train, valid


def as_float(values: pd.DataFrame) -> pd.DataFrame:
    """Booleans as 0.0/1.0 (a named function, so the fitted preprocessor pickles by reference)."""
    return values.astype(float)


def fit_preprocessor(train: pd.DataFrame, params: dict[str, Any]) -> ColumnTransformer:
    """Fit imputation (with missing-value indicators), log scaling and one-hot encoding."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    features = params["features"]
    imputer = {"strategy": "median", "add_indicator": True, "keep_empty_features": True}
    preprocessor = ColumnTransformer(
        [
            (
                "log",
                make_pipeline(
                    FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                    SimpleImputer(**imputer),
                ),
                features["log_numeric"],
            ),
            ("num", SimpleImputer(**imputer), features["numeric"]),
            (
                "bool",
                FunctionTransformer(as_float, feature_names_out="one-to-one"),
                features["boolean"],
            ),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                features["categorical"],
            ),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    preprocessor.set_output(transform="pandas")
    return preprocessor.fit(train)


def make_classifier(model_params: dict[str, Any]) -> BaseEstimator:
    """The configured family: ``hist_gradient_boosting`` (default) or ``logistic_regression``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    family = model_params["family"]
    kwargs = dict(model_params.get(family) or {})
    if family == "hist_gradient_boosting":
        return HistGradientBoostingClassifier(**kwargs)
    if family == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(**kwargs))
    raise ValueError(
        f"Unknown model family {family!r}: use 'hist_gradient_boosting' or 'logistic_regression' "
        "in conf/base/parameters_training.yml (training.model.family)."
    )


def build_model_input(instances: pd.DataFrame, preprocessor: ColumnTransformer) -> pd.DataFrame:
    """Features as the classifier is fitted on them (imputed, log-scaled, one-hot), by id."""
    model_input = preprocessor.transform(instances)
    model_input.index = pd.Index(instances[ID].to_numpy(), name=ID)
    return model_input


def fit_classifier(
    model_input: pd.DataFrame, train: pd.DataFrame, params: dict[str, Any]
) -> BaseEstimator:
    """Fit the configured classifier on the training window's rows."""
    classifier = make_classifier(params["model"])
    X = model_input.loc[train[ID].to_numpy()]
    classifier.fit(X, train[TARGET].astype(int).to_numpy())
    logger.info("Fitted %s on %d rows x %d features", type(classifier).__name__, *X.shape)
    return classifier


def compile_model(
    preprocessor: ColumnTransformer,
    classifier: BaseEstimator,
    train: pd.DataFrame,
    params: dict[str, Any],
) -> CompiledModel:
    """The fitted preprocessor and classifier compiled for serving, checked against both.

    The compiled model is what the pipeline model serves and what training evaluates; before it
    is used, its scores on a sample of the training rows must equal scikit-learn's within
    ``compile.tolerance``, or training stops (a compiler bug must never reach the registry).
    """
    settings = params["compile"]
    compiled = CompiledModel(
        preprocessor,
        classifier,
        gtil_max_rows=settings["gtil_max_rows"],
        enabled=settings["enabled"],
    )
    sample = train.head(settings["check_rows"]).drop(columns=[TARGET])
    # both paths of the tree model: one thread of GTIL (small batches) and the batch predictor
    got = np.concatenate(
        [compiled.predict_proba(sample.iloc[i : i + 1]) for i in range(min(50, len(sample)))]
        + [compiled.predict_proba(sample)]
    )
    reference = compiled.reference_proba(sample)
    want = np.concatenate([reference[: min(50, len(sample))], reference])
    worst = float(np.max(np.abs(got - want))) if len(want) else 0.0
    if not worst <= settings["tolerance"]:
        raise RuntimeError(
            f"The compiled model differs from scikit-learn by {worst:.3g} (> "
            f"{settings['tolerance']}) on training rows: set training.compile.enabled=false "
            "to serve through scikit-learn, and report the fitted objects."
        )
    logger.info(
        "Compiled %s (%s): max |compiled - sklearn| = %.3g on %d rows",
        type(classifier).__name__,
        compiled.kind,
        worst,
        len(want),
    )
    return compiled


def write_model_card(
    metrics: dict[str, dict[str, float]], policy: dict[str, Any], params: dict[str, Any]
) -> str:
    """The run's markdown model card (:mod:`ml_app.pipelines.training.model_card`).

    Imported when the card is written: it reads the provenance through ``model_logging``,
    which imports MLflow, and registering pipelines must not.
    """
    from ml_app.pipelines.training import model_card

    return model_card.write_model_card(metrics, policy, params)


def evaluate_model(
    scores: pd.DataFrame, valid: pd.DataFrame, params: dict[str, Any], costs: dict[str, float]
) -> tuple[dict[str, dict[str, float]], dict[str, Any], pd.DataFrame]:
    """Validation metrics under the deployed decision policy, the policy, and the scored rows.

    The thresholds are not tuned here: they follow from the shared cost model
    (:class:`shared_runtime.policy.DecisionPolicy`), exactly as user_app decides, so the
    validation cost is the cost of the policy that will be deployed.

    Returns:
        metrics in kedro-mlflow's ``{name: {"value": v, "step": 0}}`` form (logged to MLflow as
        ``validation.<name>``), the decision policy evaluated (costs, thresholds, alert rate;
        logged as ``decision_policy.json``), and the validation predictions.
    """
    policy = DecisionPolicy.from_costs(costs)
    alert_rate = params["alert_rate"]
    metrics, frame = score_metrics(scores, valid, policy, alert_rate)
    y = frame[TARGET].astype(int).to_numpy()
    values = {
        **metrics,
        "expected_cost_no_model_per_tx": policy.cost_without_model(y),
        "review_threshold": policy.review_threshold,
        "decline_threshold": policy.decline_threshold,
        "rows": float(len(y)),
        "fraud_rate": float(y.mean()),
    }
    logger.info("Validation window: %s", ", ".join(f"{k}={v:.4f}" for k, v in values.items()))
    metrics = {k: {"value": float(v), "step": 0} for k, v in values.items()}
    return metrics, policy_record(policy, alert_rate), frame
