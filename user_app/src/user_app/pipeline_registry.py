"""user_app's pipelines.

* ``batch_scoring`` (also ``__default__``): score a window of instances with the registered model
  (``@champion`` by default) and publish decisions and the prediction log.
* ``online_scoring``: replay a window against the running decision service (``make serve``)
  through the resilient client; fallbacks are logged.

The service itself is not a pipeline: ``python -m user_app.online`` (see ``user_app.online``).
"""

from kedro.pipeline import Pipeline

from user_app.pipelines.batch_scoring.pipeline import create_pipeline as batch_scoring
from user_app.pipelines.online_scoring.pipeline import create_pipeline as online_scoring


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {"batch_scoring": batch_scoring(), "online_scoring": online_scoring()}
    pipelines["__default__"] = pipelines["batch_scoring"]
    return pipelines
