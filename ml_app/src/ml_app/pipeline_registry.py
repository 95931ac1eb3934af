"""ml_app's pipelines.

* ``training`` (also ``__default__``): the kedro-mlflow ``PipelineML``. Running it fits the model
  and, at the end of the run, logs the *inference* pipeline with its fitted artifacts to MLflow as
  one pyfunc model and registers it under the shared registered model name.
* ``inference``: the nodes tagged ``inference`` on their own (score ``instances`` in-project).
* ``promotion``: the champion/challenger gate (``make promote``).
* ``monitoring``: realised performance, drift and alerts on user_app's decisions
  (``make monitor``).

A ``PipelineML`` must never be combined with ``+`` or ``sum``: kedro-mlflow then silently logs no
model (kedro-mlflow #554/#690). That is why ``__default__`` is the training object itself.
"""

from kedro.pipeline import Pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory  # imports no MLflow

from ml_app.pipelines.monitoring.pipeline import create_pipeline as monitoring
from ml_app.pipelines.promotion.pipeline import create_pipeline as promotion
from ml_app.pipelines.training.pipeline import create_pipeline as full_pipeline
from shared_runtime.config import shared_resolver

MODEL_NAME_IN_RUN = "model"  # the pipeline model's folder in its run (ml_app.model_logging)


def register_pipelines() -> dict[str, Pipeline]:
    full = full_pipeline()
    inference = full.only_nodes_with_tags("inference")
    training = pipeline_ml_factory(
        training=full.only_nodes_with_tags("training"),
        inference=inference,
        input_name="instances",
        # the rest (signature, requirements, code, provenance) is added by TrainingMlflowHook when
        # the model is logged: computing it here would import MLflow for every kedro command
        log_model_kwargs={
            "name": MODEL_NAME_IN_RUN,
            "registered_model_name": shared_resolver("registered_model_name"),
        },
    )
    return {
        "training": training,
        "inference": inference,
        "promotion": promotion(),
        "monitoring": monitoring(),
        "__default__": training,
    }
