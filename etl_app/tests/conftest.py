from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sim_params() -> dict:
    """The shipped simulator parameters, scaled down: same world, fewer customers and days."""
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(APP / "conf"), base_env="base", default_run_env="base")
    params = loader["parameters"]["simulate"]
    return {**params, "n_customers": 600, "n_merchants": 300, "days": 45}


@pytest.fixture(scope="session")
def world(sim_params):
    from etl_app.pipelines.simulate import nodes

    customers, cards, merchants = nodes.generate_parties(sim_params)
    transactions = nodes.generate_transactions(customers, cards, merchants, sim_params)
    oracle, chargebacks = nodes.settle_fraud(transactions, sim_params)
    return nodes.publish_source_tables(
        customers, cards, merchants, transactions, chargebacks, oracle, sim_params
    )


def payments_frame(world) -> "pd.DataFrame":  # noqa: F821
    """Source payments joined with card, customer and merchant, as the SQL extract does."""
    customers, cards, merchants, transactions, _, _ = world
    frame = (
        transactions.merge(cards[["card_id", "customer_id"]], on="card_id", how="left")
        .merge(customers[["customer_id", "home_country"]], on="customer_id", how="left")
        .merge(
            merchants.rename(
                columns={"category": "merchant_category", "country": "merchant_country"}
            ),
            on="merchant_id",
            how="left",
        )
    )
    return frame


def chargebacks_frame(world) -> "pd.DataFrame":  # noqa: F821
    transactions, chargebacks = world[3], world[4]
    return chargebacks.merge(transactions[["transaction_id", "merchant_id"]], on="transaction_id")
