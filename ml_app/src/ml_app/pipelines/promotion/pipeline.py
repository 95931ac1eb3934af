"""promotion: evaluate @challenger against @champion and move the alias when it is better."""

from functools import partial

from kedro.pipeline import Pipeline, node, pipeline

from ml_app.pipelines.promotion import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.evaluation_window,
                inputs=["model_registry", "labels"],
                outputs="promotion_window",
                name="choose_evaluation_window",
            ),
            node(
                nodes.labelled_window,
                inputs=["instances", "labels", "promotion_window"],
                outputs="promotion_rows",
                name="select_labelled_window",
            ),
            *(
                node(
                    partial(nodes.evaluate_role, role),
                    inputs=[
                        f"{role}_model",
                        "model_registry",
                        "promotion_rows",
                        "decision_costs",
                        "params:promotion",
                    ],
                    outputs=f"{role}_window_metrics",
                    name=f"evaluate_{role}",
                )
                for role in ("champion", "challenger")
            ),
            node(
                nodes.decide_promotion,
                inputs=[
                    "model_registry",
                    "champion_window_metrics",
                    "challenger_window_metrics",
                    "promotion_window",
                    "promotion_rows",
                    "params:promotion",
                ],
                outputs=["promotion_decision", "champion_alias", "promotion"],
                name="decide_promotion",
            ),
            node(
                nodes.plot_comparison,
                inputs=["model_registry", "champion_window_metrics", "challenger_window_metrics"],
                outputs="promotion_comparison_plot",
                name="plot_promotion_comparison",
            ),
        ],
        tags="promotion",
    )
