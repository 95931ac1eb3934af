"""Pipeline model predict vs the same fitted objects called directly (run in ml_app's env).

usage: predict.py <tracking_uri> <model_uri> <instances_dir> <sizes, e.g. 1,1000,100000>
"""

from __future__ import annotations

import glob
import json
import sys
import time
import warnings

import mlflow
import pandas as pd
from kedro_mlflow.mlflow import KedroPipelineModel


def seconds_per_call(fn, budget: float = 1.5, min_calls: int = 3) -> float:
    """Median wall time of ``fn`` over repeated calls within about ``budget`` seconds."""
    fn()  # warm-up
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - started < budget:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) >= 1000:
            break
    return sorted(times)[len(times) // 2]


def main() -> None:
    warnings.filterwarnings("ignore")
    tracking_uri, model_uri, instances_dir, sizes = sys.argv[1:5]
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(model_uri)
    python_model = model.unwrap_python_model()
    preprocessor = python_model._artifacts["preprocessor"]
    classifier = python_model._artifacts["classifier"]
    files = sorted(glob.glob(f"{instances_dir}/*/*.parquet"))
    instances = pd.concat([pd.read_parquet(f) for f in files[-40:]], ignore_index=True)
    results = {"model_class": type(python_model).__name__, "sizes": {}}
    for n in (int(s) for s in sizes.split(",")):
        rows = instances.head(n)
        if len(rows) < n:
            rows = pd.concat([rows] * (n // len(rows) + 1), ignore_index=True).head(n)
            rows["transaction_id"] = range(n)
        direct = seconds_per_call(
            lambda r=rows: classifier.predict_proba(preprocessor.transform(r))
        )
        lean = seconds_per_call(lambda r=rows: python_model.predict(None, r))
        pyfunc = seconds_per_call(lambda r=rows: model.predict(r))
        stock = seconds_per_call(lambda r=rows: KedroPipelineModel.predict(python_model, None, r))
        pd.testing.assert_frame_equal(
            python_model.predict(None, rows), KedroPipelineModel.predict(python_model, None, rows)
        )
        results["sizes"][str(n)] = {
            "direct_ms": direct * 1000,
            "lean_ms": lean * 1000,
            "lean_pyfunc_ms": pyfunc * 1000,
            "stock_kpm_ms": stock * 1000,
        }
    sys.stdout.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
