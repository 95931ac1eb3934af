"""etl_labels: publish FraudLabel rows known as of a cutoff, for a window of payment days."""

from kedro.pipeline import Pipeline, node, pipeline

from etl_app.pipelines.etl_labels import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.build_labels,
                inputs=["source_label_payments", "source_label_chargebacks", "params:etl_labels"],
                outputs="label_candidates",
                name="build_labels",
            ),
            node(
                nodes.split_labels,
                inputs=["label_candidates", "params:etl_labels"],
                outputs=["labels", "labels_quarantine", "labels_quality_report"],
                name="split_valid_labels",
            ),
        ],
        tags="etl_labels",
    )
