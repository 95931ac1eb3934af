import pandas as pd
import pytest

from shared_schemas.examples import transaction_instance_example

pytest_plugins = ("pytester",)


@pytest.fixture
def instances() -> pd.DataFrame:
    return transaction_instance_example()
