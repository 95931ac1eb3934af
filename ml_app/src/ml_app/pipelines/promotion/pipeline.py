"""promotion: evaluate @challenger against @champion and move the alias when it is better."""

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
            node(
                nodes.evaluate_champion,
                inputs=[
                    "champion_model",
                    "model_registry",
                    "promotion_rows",
                    "decision_costs",
                    "params:promotion",
                ],
                outputs="champion_window_metrics",
                name="evaluate_champion",
            ),
            node(
                nodes.evaluate_challenger,
                inputs=[
                    "challenger_model",
                    "model_registry",
                    "promotion_rows",
                    "decision_costs",
                    "params:promotion",
                ],
                outputs="challenger_window_metrics",
                name="evaluate_challenger",
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
