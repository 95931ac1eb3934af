"""user_app's pipelines.

* ``batch_scoring`` (also ``__default__``): score a window of instances with the registered model
  (``@champion`` by default) and publish decisions and the prediction log.
"""

from kedro.pipeline import Pipeline

from user_app.pipelines.batch_scoring.pipeline import create_pipeline as batch_scoring


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {"batch_scoring": batch_scoring()}
    pipelines["__default__"] = pipelines["batch_scoring"]
    return pipelines
