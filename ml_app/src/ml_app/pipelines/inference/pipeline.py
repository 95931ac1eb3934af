"""inference: instances -> fraud scores, with the preprocessor and classifier fitted by training.

These nodes carry both tags: training runs them to fit and evaluate, and the pipeline model
logged to MLflow runs exactly them at serving time.
"""

from kedro.pipeline import Pipeline, node, pipeline

from ml_app.pipelines.inference import nodes

SHARED = ["training", "inference"]


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.validate_instances,
                inputs="instances",
                outputs="valid_instances",
                name="validate_instances",
                tags=SHARED,
            ),
            node(
                nodes.build_model_input,
                inputs=["valid_instances", "preprocessor"],
                outputs="model_input",
                name="build_model_input",
                tags=SHARED,
            ),
            node(
                nodes.predict_scores,
                inputs=["model_input", "classifier"],
                outputs="scores",
                name="predict_scores",
                tags=SHARED,
            ),
        ]
    )
