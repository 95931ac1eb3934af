"""etl_instances: publish TransactionInstance rows for a window of days."""

from kedro.pipeline import Pipeline, node, pipeline

from etl_app.pipelines.etl_instances import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.screen_payments,
                inputs=[
                    "source_window_payments",
                    "source_history_payments",
                    "source_known_chargebacks",
                    "params:etl_instances",
                ],
                outputs=[
                    "screened_payments",
                    "screened_chargebacks",
                    "screened_out_payments",
                    "screening_counts",
                ],
                name="screen_source_payments",
            ),
            node(
                nodes.build_point_in_time_features,
                inputs=["screened_payments", "screened_chargebacks", "params:etl_instances"],
                outputs="instance_features",
                name="build_point_in_time_features",
            ),
            node(
                nodes.split_instances,
                inputs=[
                    "instance_features",
                    "screened_out_payments",
                    "screening_counts",
                    "params:etl_instances",
                ],
                outputs=["instances", "instances_quarantine", "instances_quality_report"],
                name="split_valid_instances",
            ),
        ],
        tags="etl_instances",
    )
