"""etl_app's pipelines.

* ``simulate``: fill the source-system database (stand-in for production) with simulated history.
* ``etl_instances``: publish point-in-time TransactionInstance rows for a window of days.
* ``etl_labels``: publish FraudLabel rows known as of a cutoff.

``__default__`` publishes instances and labels (it does not re-simulate the source system).
"""

from kedro.pipeline import Pipeline

from etl_app.pipelines.etl_instances.pipeline import create_pipeline as etl_instances
from etl_app.pipelines.etl_labels.pipeline import create_pipeline as etl_labels
from etl_app.pipelines.simulate.pipeline import create_pipeline as simulate


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {
        "simulate": simulate(),
        "etl_instances": etl_instances(),
        "etl_labels": etl_labels(),
    }
    pipelines["__default__"] = pipelines["etl_instances"] + pipelines["etl_labels"]
    return pipelines
