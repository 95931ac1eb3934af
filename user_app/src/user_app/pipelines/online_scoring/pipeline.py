"""online_scoring: instances of a window -> decision service (HTTP) -> decisions + fallback log."""

from kedro.pipeline import Pipeline, node, pipeline

from user_app.pipelines.batch_scoring.nodes import select_window
from user_app.pipelines.online_scoring import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                select_window,
                inputs=["instances", "params:online_scoring"],
                outputs="online_window_instances",
                name="select_online_window",
            ),
            node(
                nodes.request_decisions,
                inputs=[
                    "online_window_instances",
                    "params:online_scoring",
                    "params:online.registry.model_name",
                ],
                outputs=["online_client_decisions", "prediction_log"],
                name="request_decisions",
            ),
        ],
        tags="online_scoring",
    )
