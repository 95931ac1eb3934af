"""How the pipeline model is logged: signature from the contract, pinned requirements, code.

These are the ``log_model_kwargs`` of ``pipeline_ml_factory``; kedro-mlflow passes them to
``mlflow.pyfunc.log_model`` when a ``training`` run ends.
"""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandera.pandas as pa
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

import ml_app
import shared_runtime
from shared_runtime.config import shared_resolver
import shared_schemas
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.examples import transaction_instance_example
from shared_schemas.ml_to_user import FraudScore

MODEL_NAME_IN_RUN = "model"
# What the served model imports. Pinned to the versions training ran with, so the model is
# served with the libraries it was fitted with (requirements inference is slow and omits kedro).
RUNTIME_DISTRIBUTIONS = (
    "cloudpickle",  # the model is cloudpickled: load it with the version that pickled it
    "kedro",
    "kedro-datasets",
    "kedro-mlflow",
    "mlflow",
    "scikit-learn",
    "treelite",
    "pandas",
    "numpy",
    "pyarrow",
    "pandera",
    "fsspec",
    "omegaconf",
)
_MLFLOW_TYPES = {"int64": "long", "float64": "double", "bool": "boolean"}


def _mlflow_type(dtype: Any) -> str | AnyType:
    name = str(dtype)
    if name.startswith("datetime64"):
        # MLflow's signature enforcement cannot parse a pandas-3 text column into a datetime
        # (it does for object columns only), so `mlflow models predict -t csv` and CSV requests
        # to `mlflow models serve` failed with "Can not safely convert str to datetime64[ns]".
        # The model checks and coerces its input against the contract itself, which requires a
        # naive timestamp here; the signature leaves the column's type to that check.
        return AnyType()
    if name.startswith(("str", "string")):  # pandas 3 reports e.g. 'string[pyarrow]'
        return "string"
    return _MLFLOW_TYPES[name]


def schema_from_contract(model: type[pa.DataFrameModel]) -> Schema:
    """An MLflow schema with the contract's columns, types and optional (nullable) columns."""
    columns = model.to_schema().columns
    return Schema(
        [
            ColSpec(_mlflow_type(col.dtype), name, required=not col.nullable)
            for name, col in columns.items()
        ]
    )


def git_commit() -> str:
    """The commit the code was trained from, or 'unknown' outside a git checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(ml_app.__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def provenance() -> dict[str, str]:
    """What trained this model: app release, commit, contract version."""
    return {
        "ml_app_version": ml_app.__version__,
        "git_commit": git_commit(),
        "contract_version": shared_schemas.__version__,
    }


def log_model_kwargs() -> dict[str, Any]:
    return {
        "name": MODEL_NAME_IN_RUN,
        "registered_model_name": shared_resolver("registered_model_name"),
        "signature": ModelSignature(
            inputs=schema_from_contract(TransactionInstance),
            outputs=schema_from_contract(FraudScore),
        ),
        "input_example": transaction_instance_example(),
        # The model carries its own code: ml_app (the nodes), the runtime code they import
        # (the decision policy) and the contracts it validates with.
        "code_paths": [
            str(Path(ml_app.__file__).parent),
            str(Path(shared_runtime.__file__).parent),
            str(Path(shared_schemas.__file__).parent),
        ],
        "pip_requirements": [f"{dist}=={version(dist)}" for dist in RUNTIME_DISTRIBUTIONS],
        "metadata": provenance(),
    }
