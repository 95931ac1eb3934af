"""monitoring: realised performance, data and score drift, alerts, HTML report."""

from kedro.pipeline import Pipeline, node, pipeline

from ml_app.pipelines.monitoring import nodes, online


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.reference_instances,
                inputs=["instances", "model_registry", "params:monitoring"],
                outputs="reference_instances",
                name="select_reference_window",
            ),
            node(
                nodes.reference_scores,
                inputs=["champion_model", "model_registry", "reference_instances"],
                outputs="reference_scores",
                name="score_reference_window",
            ),
            node(
                nodes.performance_by_period,
                inputs=["decisions", "labels", "decision_costs", "params:monitoring"],
                outputs="performance_by_period",
                name="measure_realised_performance",
            ),
            node(
                nodes.drift_by_period,
                inputs=[
                    "instances",
                    "decisions",
                    "reference_instances",
                    "reference_scores",
                    "params:monitoring",
                ],
                outputs="drift_by_period",
                name="measure_drift",
            ),
            node(
                nodes.build_report,
                inputs=[
                    "performance_by_period",
                    "drift_by_period",
                    "model_registry",
                    "params:monitoring",
                ],
                outputs=["monitoring_report", "monitoring_alerts", "monitoring"],
                name="apply_alert_rules",
            ),
            node(
                online.route_online_decisions,
                inputs=["online_decisions", "shadow_decisions", "prediction_log", "model_registry"],
                outputs="routed_online_decisions",
                name="route_online_decisions",
            ),
            node(
                online.online_report,
                inputs=[
                    "routed_online_decisions",
                    "labels",
                    "decision_costs",
                    "params:monitoring",
                ],
                outputs=["online_monitoring_report", "online_comparison", "online_monitoring"],
                name="compare_online_routes",
            ),
            node(
                nodes.render_html,
                inputs=[
                    "performance_by_period",
                    "drift_by_period",
                    "monitoring_alerts",
                    "labels",
                    "online_comparison",
                ],
                outputs="monitoring_html",
                name="render_monitoring_report",
            ),
        ],
        tags="monitoring",
    )
