import pandas as pd
import pytest

from shared_schemas.examples import transaction_instance_example


@pytest.fixture
def instances() -> pd.DataFrame:
    return transaction_instance_example()


@pytest.fixture
def labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [1001, 1002],
            "event_time": pd.to_datetime(["2025-06-03 12:41:07", "2025-06-03 03:12:55"]),
            "is_fraud": [False, True],
            "label_time": pd.to_datetime(["2025-07-18 12:41:07", "2025-06-15 09:00:00"]),
            "label_source": ["matured", "chargeback"],
            "as_of": pd.Timestamp("2025-08-01"),
        }
    )
