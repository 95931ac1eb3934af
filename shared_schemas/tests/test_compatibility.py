"""Backward compatibility: data valid under the previous released contracts still validates.

``tests/frozen/v<version>/`` holds verbatim copies of each released contract module. Data is
generated from the *frozen* schemas with pandera's hypothesis strategies (row rules repaired
after drawing by :mod:`shared_schemas.strategies`, as strategies cannot satisfy cross-column
checks) and must pass the *current* contracts of the same name. A breaking change makes this
fail: bump the major version (minor while at 0.x) and record the break in the changelog instead.
"""

import importlib

import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings

from shared_schemas import etl_to_ml, ml_to_user, monitoring
from shared_schemas.strategies import contract_frames

MODELS = {
    "TransactionInstance": etl_to_ml,
    "FraudLabel": etl_to_ml,
    "FraudScore": ml_to_user,
    "FraudDecision": ml_to_user,
    "PredictionLog": ml_to_user,
    "PromotionDecision": monitoring,
    "MonitoringReport": monitoring,
}
# release folder -> contracts frozen there (a module unchanged since an earlier release is
# checked through that release's copy)
FROZEN = {
    "v0_1_0": ["TransactionInstance", "FraudLabel", "FraudScore", "FraudDecision", "PredictionLog"],
    "v0_1_2": ["PromotionDecision", "MonitoringReport"],
}
CASES = [(release, name) for release, names in FROZEN.items() for name in names]


@pytest.mark.parametrize(("release", "name"), CASES)
def test_data_of_previous_release_validates_today(release, name):
    frozen_module = importlib.import_module(
        f"tests.frozen.{release}.{MODELS[name].__name__.rsplit('.', 1)[1]}"
    )
    frozen = getattr(frozen_module, name)
    current = getattr(MODELS[name], name)

    checked = []

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(contract_frames(frozen))
    def check(df: pd.DataFrame) -> None:
        try:
            frozen.validate(df)
        except pa.errors.SchemaError:
            assume(False)  # not valid under the old contract either: not evidence
        current.validate(df)
        checked.append(len(df))

    check()
    assert checked, (
        "no generated frame was valid under the frozen contract: the test proves nothing"
    )
