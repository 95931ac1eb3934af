"""batch_scoring: instances of a window -> registered model -> decisions + prediction log."""

from kedro.pipeline import Pipeline, node, pipeline

from user_app.pipelines.batch_scoring import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.select_window,
                inputs=["instances", "params:batch_scoring"],
                outputs="window_instances",
                name="select_scoring_window",
            ),
            node(
                nodes.score_instances,
                inputs=["scoring_model", "window_instances"],
                outputs=["scores", "scoring_run"],
                name="score_instances",
            ),
            node(
                nodes.decide,
                inputs=["scores", "window_instances", "scoring_run", "decision_costs"],
                outputs=["decisions", "prediction_log"],
                name="decide",
            ),
        ],
        tags="batch_scoring",
    )
