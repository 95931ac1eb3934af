from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_app
from shared_schemas.etl_to_ml import MERCHANT_CATEGORIES, FraudLabel, TransactionInstance

APP = Path(__file__).resolve().parents[1]


def make_instances(n: int, seed: int = 0, start: str = "2025-02-01", days: int = 100):
    """Contract-valid instances and labels with a learnable fraud signal (no etl_app needed)."""
    rng = np.random.default_rng(seed)
    event_time = pd.Timestamp(start) + pd.to_timedelta(
        np.sort(rng.integers(0, days * 86_400, n)), unit="s"
    )
    c1 = rng.poisson(0.3, n)
    c24 = c1 + rng.poisson(1.5, n)
    c7 = c24 + rng.poisson(5, n)
    foreign = rng.random(n) < 0.1
    ratio = rng.lognormal(0, 0.7, n)
    logit = -5.0 + 2.5 * foreign + 1.2 * np.log(ratio) + 0.8 * c1
    is_fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
    amount = np.round(30 * ratio, 2)
    instances = pd.DataFrame(
        {
            "transaction_id": np.arange(n),
            "card_id": rng.integers(0, n // 5, n),
            "customer_id": rng.integers(0, n // 6, n),
            "merchant_id": rng.integers(0, 300, n),
            "event_time": event_time,
            "amount": amount,
            "merchant_category": rng.choice(MERCHANT_CATEGORIES, n),
            "merchant_country": np.where(foreign, "NG", "US"),
            "is_foreign": foreign,
            "hour_of_day": event_time.hour,
            "day_of_week": event_time.dayofweek,
            "tx_count_5m": c1 // 4,  # the hot windows, derived: no extra draws from rng
            "tx_count_15m": c1 // 2,
            "tx_count_1h": c1,
            "tx_count_24h": c24,
            "tx_count_7d": c7,
            "amount_sum_1h": c1 * 30.0,
            "amount_sum_24h": c24 * 30.0,
            "amount_sum_7d": c7 * 30.0,
            "seconds_since_prev_tx": np.where(
                rng.random(n) < 0.05, np.nan, rng.exponential(9e4, n)
            ),
            "amount_to_median_ratio": np.where(rng.random(n) < 0.05, np.nan, ratio),
            "is_new_merchant": rng.random(n) < 0.3,
            "is_new_country": foreign & (rng.random(n) < 0.5),
            "merchant_chargebacks_30d": rng.poisson(0.2, n),
            "merchant_tx_30d": rng.poisson(50, n),
        }
    )
    instances["merchant_tx_10m"] = instances["merchant_tx_30d"] // 25
    instances["merchant_chargeback_rate_30d"] = instances["merchant_chargebacks_30d"] / (
        instances["merchant_tx_30d"] + 1
    )
    labels = pd.DataFrame(
        {
            "transaction_id": instances["transaction_id"],
            "event_time": event_time,
            "is_fraud": is_fraud,
            "label_time": event_time + pd.Timedelta(days=45),
            "label_source": np.where(is_fraud, "chargeback", "matured"),
            "as_of": event_time.max() + pd.Timedelta(days=46),
        }
    )
    labels.loc[is_fraud, "label_time"] = event_time[is_fraud] + pd.Timedelta(days=10)
    return TransactionInstance.validate(instances), FraudLabel.validate(labels)


@pytest.fixture(scope="session")
def params() -> dict:
    conf = yaml.safe_load((APP / "conf/base/parameters_training.yml").read_text())
    conf["training"]["window"] = {
        "train_start": "2025-02-01",
        "train_end": "2025-04-01",
        "valid_end": "2025-05-12",
    }
    conf["training"]["model"]["hist_gradient_boosting"]["max_iter"] = 60
    conf["evaluation"]["importance_sample"] = 2000
    # the cost model's only home (the catalog's `decision_costs` entry reads it)
    shared = yaml.safe_load((APP.parent / "conf/shared.yml").read_text())
    conf["decision_costs"] = shared["decision_costs"]
    return conf


@pytest.fixture(scope="session")
def data():
    return make_instances(12_000)


def isolated_project_with_data(root: Path, n: int, seed: int) -> tuple[Path, pd.DataFrame]:
    """An isolated copy of ml_app under ``root`` whose exchange holds synthetic instances and
    labels (ml_app may not import etl_app); returns the project folder and the instances."""
    project = isolated_app(APP, root)
    instances, labels = make_instances(n, seed=seed)
    for name, frame in (("instances", instances), ("labels", labels)):
        ExchangeParquetDataset(
            filepath=str(root / "data/exchange" / name), partition_by="event_time"
        ).save(frame)
    return project, instances
