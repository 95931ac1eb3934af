"""inference: instances -> fraud scores, with the compiled model built by training.

These nodes carry both tags: training runs them to evaluate, and the pipeline model logged to
MLflow runs exactly them at serving time. Their only artifact is ``compiled_model``: the fitted
preprocessor and classifier compiled to numpy / treelite by training's ``compile_model`` node.
"""

from kedro.pipeline import Pipeline, node, pipeline

from ml_app.pipelines.inference import nodes

SHARED = ["training", "inference"]
# The contract-valid instances: a caller that has validated its input already starts here.
VALIDATED = "valid_instances"


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.validate_instances,
                inputs="instances",
                outputs=VALIDATED,
                name="validate_instances",
                tags=SHARED,
            ),
            node(
                nodes.predict_scores,
                inputs=[VALIDATED, "compiled_model"],
                outputs="scores",
                name="predict_scores",
                tags=SHARED,
            ),
        ]
    )
