"""Diagnostic plots of a trained model on its validation window (logged to MLflow as artifacts)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.ml_to_user import FraudScore

if TYPE_CHECKING:  # matplotlib and scikit-learn are imported when a plot is drawn
    from matplotlib.figure import Figure
    from sklearn.base import BaseEstimator
else:  # what Kedro's type-hint extraction resolves, without importing the library
    Figure = BaseEstimator = Any

logger = logging.getLogger(__name__)
ID = TransactionInstance.transaction_id
TARGET = FraudLabel.is_fraud
SCORE = FraudScore.score


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, imported when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")  # plots are files, never windows
    import matplotlib.pyplot as plt

    return plt


def _figure(title: str) -> tuple[Figure, Any]:
    fig, ax = _pyplot().subplots(figsize=(6, 4.5), layout="constrained")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig, ax


def plot_roc(predictions: pd.DataFrame) -> Figure:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(predictions[TARGET], predictions[SCORE])
    fig, ax = _figure("ROC curve (validation window)")
    ax.plot(fpr, tpr, label="model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate")
    ax.legend()
    return fig


def plot_precision_recall(predictions: pd.DataFrame) -> Figure:
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(predictions[TARGET], predictions[SCORE])
    fig, ax = _figure("Precision-recall curve (validation window)")
    ax.plot(recall, precision, label="model")
    ax.axhline(predictions[TARGET].mean(), linestyle="--", color="grey", label="fraud rate")
    ax.set(xlabel="recall", ylabel="precision")
    ax.legend()
    return fig


def plot_calibration(predictions: pd.DataFrame) -> Figure:
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(
        predictions[TARGET], predictions[SCORE], n_bins=10, strategy="quantile"
    )
    fig, ax = _figure("Calibration (quantile bins)")
    ax.plot(predicted, observed, marker="o", label="model")
    top = max(predicted.max(), observed.max())
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed fraud rate")
    ax.legend()
    return fig


def plot_score_distribution(predictions: pd.DataFrame, threshold: float) -> Figure:
    fig, ax = _figure("Score distribution by outcome")
    bins = np.linspace(0, 1, 51)
    for value, label in ((False, "legitimate"), (True, "fraud")):
        part = predictions.loc[predictions[TARGET] == value, SCORE]
        ax.hist(part, bins=bins, alpha=0.6, density=True, label=f"{label} (n={len(part)})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"review threshold {threshold:.3f}")
    ax.set(xlabel="fraud score", ylabel="density", yscale="log")
    ax.legend()
    return fig


def plot_feature_importance(
    classifier: BaseEstimator, model_input: pd.DataFrame, predictions: pd.DataFrame, params: dict
) -> Figure:
    """Permutation importance (drop in PR-AUC) on a sample of the validation window."""
    sample = predictions.sample(
        n=min(params["importance_sample"], len(predictions)), random_state=0
    )
    X = model_input.loc[sample[ID].to_numpy()]
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        classifier,
        X,
        sample[TARGET].astype(int),
        scoring="average_precision",
        n_repeats=3,
        random_state=0,
        n_jobs=1,
    )
    order = np.argsort(result.importances_mean)[-15:]
    fig, ax = _figure("Permutation importance (drop in PR-AUC)")
    ax.barh(X.columns[order], result.importances_mean[order], xerr=result.importances_std[order])
    ax.set(xlabel="mean decrease in average precision")
    return fig


def plot_loss_curve(
    classifier: BaseEstimator, model_input: pd.DataFrame, predictions: pd.DataFrame
) -> Figure:
    """Validation log loss after each boosting iteration (iterative models only)."""
    fig, ax = _figure("Loss curve (validation log loss per iteration)")
    if not hasattr(classifier, "staged_predict_proba"):
        ax.text(0.5, 0.5, f"{type(classifier).__name__} has no iterations to plot", ha="center")
        return fig
    X = model_input.loc[predictions[ID].to_numpy()]
    y = predictions[TARGET].astype(int).to_numpy()
    from sklearn.metrics import log_loss

    losses = [log_loss(y, p[:, 1], labels=[0, 1]) for p in classifier.staged_predict_proba(X)]
    ax.plot(np.arange(1, len(losses) + 1), losses)
    ax.set(xlabel="iteration", ylabel="log loss")
    return fig


def plot_diagnostics(
    predictions: pd.DataFrame,
    policy: dict[str, Any],
    classifier: BaseEstimator,
    model_input: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[Figure, ...]:
    """All diagnostic figures: ROC, PR, calibration, scores, importance, loss curve."""
    figures = (
        plot_roc(predictions),
        plot_precision_recall(predictions),
        plot_calibration(predictions),
        plot_score_distribution(predictions, policy["review_threshold"]),
        plot_feature_importance(classifier, model_input, predictions, params),
        plot_loss_curve(classifier, model_input, predictions),
    )
    _pyplot().close("all")
    return figures
