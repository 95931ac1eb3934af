"""A copy of a registered pipeline model whose python_model is kedro-mlflow's own
KedroPipelineModel (same artifacts, same code), to serve as the reference (run in ml_app's env).

usage: stock_kpm.py <tracking_uri> <model_uri> <out_dir>
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import cloudpickle
import mlflow
from kedro_mlflow.mlflow import KedroPipelineModel


def main() -> None:
    warnings.filterwarnings("ignore")
    tracking_uri, model_uri, out = sys.argv[1:4]
    mlflow.set_tracking_uri(tracking_uri)
    shutil.rmtree(out, ignore_errors=True)
    Path(out).mkdir(parents=True)
    out_dir = Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=out))
    sys.path.insert(0, str(out_dir / "code"))  # the model's own ml_app, to unpickle it
    pickled = out_dir / "python_model.pkl"
    with pickled.open("rb") as f:
        python_model = cloudpickle.load(f)
    python_model.__class__ = KedroPipelineModel  # same state, kedro-mlflow's predict
    with pickled.open("wb") as f:
        cloudpickle.dump(python_model, f)
    check = mlflow.pyfunc.load_model(str(out_dir)).unwrap_python_model()
    sys.stdout.write(json.dumps({"path": str(out_dir), "class": type(check).__name__}) + "\n")


if __name__ == "__main__":
    main()
