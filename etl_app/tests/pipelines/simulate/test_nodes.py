import numpy as np
import pandas as pd

from etl_app.pipelines.simulate import nodes


def simulate(params):
    customers, cards, merchants = nodes.generate_parties(params)
    transactions = nodes.generate_transactions(customers, cards, merchants, params)
    oracle, chargebacks = nodes.settle_fraud(transactions, params)
    return nodes.publish_source_tables(
        customers, cards, merchants, transactions, chargebacks, oracle, params
    )


def test_same_seed_gives_identical_source_tables(sim_params, world):
    again = simulate(sim_params)
    for first, second in zip(world, again, strict=True):
        pd.testing.assert_frame_equal(first.reset_index(drop=True), second.reset_index(drop=True))


def test_another_seed_gives_another_world(sim_params, world):
    other = simulate({**sim_params, "seed": sim_params["seed"] + 1})
    assert not world[3]["amount"].equals(other[3]["amount"])


def test_source_tables_hold_no_latent_truth(world):
    customers, cards, merchants, transactions, chargebacks, oracle = world
    for table in (customers, cards, merchants, transactions, chargebacks):
        assert not [c for c in table.columns if c.startswith("_") or "fraud" in c], table.columns
    assert set(oracle.columns) == {"transaction_id", "fraud_probability", "is_fraud", "is_attack"}
    assert oracle["fraud_probability"].between(0, 1).all()


def test_fraud_is_rare_mostly_from_attacks_and_reported_late(world):
    _, _, _, transactions, chargebacks, oracle = world
    assert 0.001 < oracle["is_fraud"].mean() < 0.05
    assert oracle.loc[oracle["is_fraud"], "is_attack"].mean() > 0.5
    delay = chargebacks.merge(transactions, on="transaction_id").eval("received_at - event_time")
    assert delay.min() >= pd.Timedelta(days=1)
    assert delay.median() > pd.Timedelta(days=5)
    assert set(chargebacks["transaction_id"]) <= set(
        oracle.loc[oracle["is_fraud"], "transaction_id"]
    )


def test_the_database_never_holds_the_future(sim_params, world):
    end = pd.Timestamp(sim_params["start"]) + pd.Timedelta(days=sim_params["days"])
    _, _, _, transactions, chargebacks, oracle = world
    assert transactions["event_time"].max() < end
    assert chargebacks["received_at"].max() < end
    # late frauds exist, but their chargebacks have not arrived yet
    assert oracle["is_fraud"].sum() > len(chargebacks)


def test_clock_reveals_more_of_the_same_timeline(sim_params, world):
    as_of = pd.Timestamp(sim_params["start"]) + pd.Timedelta(days=20)
    early = simulate({**sim_params, "as_of": str(as_of)})
    assert early[3]["event_time"].max() < as_of
    assert early[4]["received_at"].max() < as_of
    later = world[3].set_index("transaction_id").loc[early[3]["transaction_id"]]
    np.testing.assert_array_equal(later["amount"].to_numpy(), early[3]["amount"].to_numpy())


def test_drift_changes_the_attacks_after_its_start(sim_params):
    drift = {**sim_params["drift"], "start": "2025-01-25"}
    world = simulate({**sim_params, "drift": drift})
    tx = world[3].merge(world[5], on="transaction_id")
    attacks = tx[tx["is_attack"]]
    before = attacks[attacks["event_time"] < "2025-01-25"]["amount"].median()
    after = attacks[attacks["event_time"] >= "2025-01-25"]["amount"].median()
    assert after < 5 < before
