"""Inference nodes: what the logged pipeline model runs, and what training runs too.

Every function here is tagged both ``training`` and ``inference``, so the preprocessing the model
was fitted with is, by construction, the preprocessing it is served with.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer

from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.fast import FastContract
from shared_schemas.ml_to_user import FraudScore

logger = logging.getLogger(__name__)
ID = TransactionInstance.transaction_id
_CONTRACT = FastContract(TransactionInstance)


def validate_instances(instances: pd.DataFrame) -> pd.DataFrame:
    """Refuse input that breaks the TransactionInstance contract, naming the failed checks.

    The catalog validates exchange data when it is loaded, but a served model receives its
    input in memory, so the model checks it itself, with the contract compiled for speed
    (pandera's fixed ~15 ms per call would dominate a one-row request; errors are pandera's).

    Raises:
        shared_schemas.enforce.ContractViolation: listing each failed check with examples.
    """
    return _CONTRACT.validate(instances)


def build_model_input(instances: pd.DataFrame, preprocessor: ColumnTransformer) -> pd.DataFrame:
    """Features as the classifier sees them (imputed, log-scaled, one-hot), indexed by id."""
    model_input = preprocessor.transform(instances)
    model_input.index = pd.Index(instances[ID].to_numpy(), name=ID)
    return model_input


def predict_scores(model_input: pd.DataFrame, classifier: BaseEstimator) -> pd.DataFrame:
    """One fraud probability per transaction, in the FraudScore contract's shape."""
    scores = classifier.predict_proba(model_input)[:, 1]
    return pd.DataFrame(
        {ID: model_input.index.to_numpy(dtype=np.int64), FraudScore.score: scores.astype(float)}
    )
