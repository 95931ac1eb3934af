"""Training-only nodes: split by time, fit the preprocessor and classifier, evaluate."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml_app.pipelines.inference.compiled import CompiledModel
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.ml_to_user import FraudScore

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


def join_scores(scores: pd.DataFrame, labelled: pd.DataFrame) -> pd.DataFrame:
    """Labelled rows (id, event time, outcome) with the score the model gave each."""
    return labelled[[ID, TIME, TARGET]].merge(scores, on=ID, how="left", validate="one_to_one")


def expected_cost(
    y: np.ndarray, score: np.ndarray, threshold: float, costs: dict[str, float]
) -> float:
    """Cost per transaction when every score >= threshold is reviewed and the rest approved.

    A missed fraud costs ``missed_fraud``; every review costs ``review`` (and catches the fraud).
    """
    alert = score >= threshold
    missed = np.sum(y.astype(bool) & ~alert)
    return float((missed * costs["missed_fraud"] + alert.sum() * costs["review"]) / len(y))


def choose_threshold(y: np.ndarray, score: np.ndarray, costs: dict[str, float]) -> float:
    """The review threshold with the lowest expected cost on the validation window."""
    candidates = np.unique(np.quantile(score, np.linspace(0.5, 0.9999, 400)))
    cost = [expected_cost(y, score, t, costs) for t in candidates]
    return float(candidates[int(np.argmin(cost))])


def recall_at_alert_rate(y: np.ndarray, score: np.ndarray, alert_rate: float) -> float:
    """Share of frauds among the top ``alert_rate`` of scores."""
    n_alerts = max(1, round(alert_rate * len(score)))
    top = np.argsort(-score, kind="stable")[:n_alerts]
    return float(y[top].sum() / max(1, y.sum()))


def classification_metrics(
    y: np.ndarray, s: np.ndarray, costs: dict[str, float], alert_rate: float, threshold: float
) -> dict[str, float]:
    """Ranking, calibration and cost metrics of scores ``s`` against outcomes ``y``."""
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "log_loss": float(log_loss(y, s, labels=[0, 1])),
        "brier": float(brier_score_loss(y, s)),
        "recall_at_alerts": recall_at_alert_rate(y, s, alert_rate),
        "expected_cost_per_tx": expected_cost(y, s, threshold, costs),
    }


def evaluate_model(
    scores: pd.DataFrame, valid: pd.DataFrame, params: dict[str, Any], costs: dict[str, float]
) -> tuple[dict[str, dict[str, float]], dict[str, Any], pd.DataFrame]:
    """Validation metrics, the cost-optimal review threshold, and the scored validation rows.

    Returns:
        metrics in kedro-mlflow's ``{name: {"value": v, "step": 0}}`` form (logged to MLflow as
        ``validation.<name>``), the decision policy
        (threshold and the costs it was chosen with), and the validation predictions.
    """
    frame = join_scores(scores, valid)
    y = frame[TARGET].astype(int).to_numpy()
    s = frame[FraudScore.score].to_numpy()
    threshold = choose_threshold(y, s, costs)
    alert_rate = params["alert_rate"]
    values = {
        **classification_metrics(y, s, costs, alert_rate, threshold),
        "expected_cost_no_model_per_tx": float(y.mean() * costs["missed_fraud"]),
        "decision_threshold": threshold,
        "rows": float(len(y)),
        "fraud_rate": float(y.mean()),
    }
    logger.info("Validation window: %s", ", ".join(f"{k}={v:.4f}" for k, v in values.items()))
    policy = {"review_threshold": threshold, "costs": dict(costs), "alert_rate": alert_rate}
    metrics = {k: {"value": float(v), "step": 0} for k, v in values.items()}
    return metrics, policy, frame
