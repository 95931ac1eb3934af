"""Pipeline model predict vs the same fitted objects called directly (run in ml_app's env).

usage: predict.py <tracking_uri> <model_uri> <instances_dir> <sizes, e.g. 1,1000,100000>

``direct`` is scikit-learn on the fitted objects the compiled model was built from
(``classifier.predict_proba(preprocessor.transform(rows))``, default threads); ``lean`` is the
logged pipeline model's ``predict`` (contract check + compiled model); ``fast`` its
``predict_validated`` (what the decision service calls); ``pyfunc`` adds MLflow's signature
enforcement; ``stock`` is kedro-mlflow's own ``KedroPipelineModel.predict`` on the same model.
For one row, ``parts`` splits the time between the contract check and the compiled model.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

import mlflow
import pandas as pd
from kedro_mlflow.mlflow import KedroPipelineModel

from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.fast import FastContract
from shared_schemas.etl_to_ml import TransactionInstance


def seconds_per_call(fn, budget: float = 1.5, min_calls: int = 3) -> float:
    """Median wall time of ``fn`` over repeated calls within about ``budget`` seconds."""
    fn()  # warm-up
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - started < budget:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
        if len(times) >= 3000:
            break
    return sorted(times)[len(times) // 2]


def main() -> None:
    warnings.filterwarnings("ignore")
    tracking_uri, model_uri, instances_dir, sizes = sys.argv[1:5]
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(model_uri)
    python_model = model.unwrap_python_model()
    compiled = python_model._artifacts["compiled_model"]
    preprocessor, classifier = compiled.preprocessor, compiled.classifier
    contract = FastContract(TransactionInstance)
    instances = ExchangeParquetDataset(
        filepath=instances_dir, partition_by="event_time", last_partitions=40
    ).load()
    results = {
        "model_class": type(python_model).__name__,
        "compiled_kind": compiled.kind,
        "sizes": {},
    }
    for n in (int(s) for s in sizes.split(",")):
        rows = instances.head(n)
        if len(rows) < n:
            rows = pd.concat([rows] * (n // len(rows) + 1), ignore_index=True).head(n)
            rows["transaction_id"] = range(n)
        valid = contract.validate(rows)
        direct = seconds_per_call(
            lambda r=rows: classifier.predict_proba(preprocessor.transform(r))
        )
        lean = seconds_per_call(lambda r=rows: python_model.predict(None, r))
        fast = seconds_per_call(lambda v=valid: python_model.predict_validated(v))
        pyfunc = seconds_per_call(lambda r=rows: model.predict(r))
        stock = seconds_per_call(lambda r=rows: KedroPipelineModel.predict(python_model, None, r))
        ours = python_model.predict(None, rows)
        pd.testing.assert_frame_equal(ours, KedroPipelineModel.predict(python_model, None, rows))
        pd.testing.assert_frame_equal(ours, python_model.predict_validated(valid))
        reference = classifier.predict_proba(preprocessor.transform(rows))[:, 1]
        results["sizes"][str(n)] = {
            "direct_ms": direct * 1000,
            "lean_ms": lean * 1000,
            "fast_ms": fast * 1000,
            "lean_pyfunc_ms": pyfunc * 1000,
            "stock_kpm_ms": stock * 1000,
            "max_abs_diff": float(abs(ours["score"].to_numpy() - reference).max()),
        }
        if n == 1:
            results["parts"] = {
                "validate_ms": seconds_per_call(lambda r=rows: contract.validate(r)) * 1000,
                "features_ms": seconds_per_call(lambda v=valid: compiled.features(v)) * 1000,
                "compiled_ms": seconds_per_call(lambda v=valid: compiled.predict_proba(v)) * 1000,
                "sklearn_transform_ms": seconds_per_call(lambda r=rows: preprocessor.transform(r))
                * 1000,
            }
    sys.stdout.write(json.dumps(results) + "\n")


if __name__ == "__main__":
    main()
