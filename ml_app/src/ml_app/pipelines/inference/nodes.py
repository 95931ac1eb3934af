"""Inference nodes: what the logged pipeline model runs, and what training runs too.

Every function here is tagged both ``training`` and ``inference``, so the scores training
evaluates are, by construction, the scores the served model gives: both come from the same
compiled model (:mod:`ml_app.pipelines.inference.compiled`), which training builds from the fitted
preprocessor and classifier and checks against them.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ml_app.pipelines.inference.compiled import CompiledModel  # numpy and pandas only
from shared_runtime.fast import FastContract
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.ml_to_user import FraudScore

logger = logging.getLogger(__name__)
ID = TransactionInstance.transaction_id
SCORE = FraudScore.score
_CONTRACT = FastContract(TransactionInstance)


def validate_instances(instances: pd.DataFrame) -> pd.DataFrame:
    """Refuse input that breaks the TransactionInstance contract, naming the failed checks.

    The catalog validates exchange data when it is loaded, but a served model receives its
    input in memory, so the model checks it itself, with the contract compiled for speed
    (pandera's fixed ~15 ms per call would dominate a one-row request; errors are pandera's).
    A caller that has just validated the same frame against the same contract (the decision
    service) can skip this node: see ``LeanPipelineModel.predict_validated``.

    Raises:
        shared_runtime.enforce.ContractViolation: listing each failed check with examples.
    """
    return _CONTRACT.validate(instances)


def predict_scores(instances: pd.DataFrame, compiled_model: CompiledModel) -> pd.DataFrame:
    """One fraud probability per contract-valid instance, in the FraudScore contract's shape."""
    scores = np.asarray(compiled_model.predict_proba(instances), dtype=np.float64)
    # int64 already in a contract-valid frame: asarray copies nothing (to_numpy(dtype=) would
    # check the dtype again); an explicit RangeIndex saves pandas inferring one (tens of us for
    # one row, which is most of this node's own cost)
    ids = np.asarray(instances[ID].to_numpy(), dtype=np.int64)
    return pd.DataFrame({ID: ids, SCORE: scores}, index=pd.RangeIndex(len(ids)), copy=False)
