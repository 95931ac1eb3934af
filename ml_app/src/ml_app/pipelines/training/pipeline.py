"""training: split, fit, evaluate and diagnose; includes every inference node.

Nodes tagged only ``training`` fit, compile and evaluate; the inference nodes (tagged ``training``
and ``inference``) are the same node objects the pipeline model will run when served, so the
validation metrics are computed on the compiled model's scores, exactly what is served.
"""

from kedro.pipeline import Pipeline, node, pipeline

from ml_app.pipelines.inference.pipeline import create_pipeline as inference_pipeline
from ml_app.pipelines.training import diagnostics, nodes

PLOTS = [
    "roc",
    "precision_recall",
    "calibration",
    "score_distribution",
    "feature_importance",
    "loss",
]


def create_pipeline(**kwargs) -> Pipeline:
    training_only = pipeline(
        [
            node(
                nodes.split_by_time,
                inputs=["valid_instances", "labels", "params:training"],
                outputs=["train_set", "validation_set"],
                name="split_by_time",
            ),
            node(
                nodes.fit_preprocessor,
                inputs=["train_set", "params:training"],
                outputs="preprocessor",
                name="fit_preprocessor",
            ),
            node(
                nodes.build_model_input,
                inputs=["valid_instances", "preprocessor"],
                outputs="model_input",
                name="build_model_input",
            ),
            node(
                nodes.fit_classifier,
                inputs=["model_input", "train_set", "params:training"],
                outputs="classifier",
                name="fit_classifier",
            ),
            node(
                nodes.compile_model,
                inputs=["preprocessor", "classifier", "train_set", "params:training"],
                outputs="compiled_model",
                name="compile_model",
            ),
            node(
                nodes.evaluate_model,
                inputs=["scores", "validation_set", "params:evaluation", "decision_costs"],
                outputs=["validation", "decision_policy", "validation_predictions"],
                name="evaluate_model",
            ),
            node(
                diagnostics.plot_diagnostics,
                inputs=[
                    "validation_predictions",
                    "decision_policy",
                    "classifier",
                    "model_input",
                    "params:evaluation",
                ],
                outputs=[f"{plot}_plot" for plot in PLOTS],
                name="plot_diagnostics",
            ),
            node(
                nodes.write_model_card,
                inputs=["validation", "decision_policy", "params:training"],
                outputs="model_card",
                name="write_model_card",
            ),
        ],
        tags="training",
    )
    return inference_pipeline() + training_only
