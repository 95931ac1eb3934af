"""Score one parquet file with one MLflow model, in a process of its own.

``python -P score_worker.py <model_uri> <input.parquet> <output.parquet>``

Run by path, never imported (``ml_app.model_process`` starts it): the process must not have
imported ml_app, shared_schemas or shared_runtime before MLflow loads the model, so that the
model's own bundled copies (its ``code_paths``, which MLflow puts first on ``sys.path``) are the
ones its pickled objects resolve against, not the checkout's. ``-P`` keeps this file's folder off
``sys.path`` for the same reason. Standard library and MLflow/pandas imports only.
"""

import sys

import mlflow
import pandas as pd


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(__doc__ or "")
        return 2
    model_uri, source, target = argv
    model = mlflow.pyfunc.load_model(model_uri)
    scores = pd.DataFrame(model.predict(pd.read_parquet(source)))
    scores.to_parquet(target, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
