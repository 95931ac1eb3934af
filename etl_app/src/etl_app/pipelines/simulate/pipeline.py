"""simulate: fill the source-system database with a deterministic simulated history."""

from kedro.pipeline import Pipeline, node, pipeline

from etl_app.pipelines.simulate import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(
                nodes.generate_parties,
                inputs="params:simulate",
                outputs=["sim_customers", "sim_cards", "sim_merchants"],
                name="generate_parties",
            ),
            node(
                nodes.generate_transactions,
                inputs=["sim_customers", "sim_cards", "sim_merchants", "params:simulate"],
                outputs="sim_transactions",
                name="generate_transactions",
            ),
            node(
                nodes.settle_fraud,
                inputs=["sim_transactions", "params:simulate"],
                outputs=["sim_oracle", "sim_chargebacks"],
                name="settle_fraud",
            ),
            node(
                nodes.publish_source_tables,
                inputs=[
                    "sim_customers",
                    "sim_cards",
                    "sim_merchants",
                    "sim_transactions",
                    "sim_chargebacks",
                    "sim_oracle",
                    "params:simulate",
                ],
                outputs=[
                    "source_customers",
                    "source_cards",
                    "source_merchants",
                    "source_transactions",
                    "source_chargebacks",
                    "source_oracle",
                ],
                name="publish_source_tables",
            ),
        ],
        tags="simulate",
    )
