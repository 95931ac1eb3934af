"""enforce() and ContractViolation: every failed check of a contract in one actionable message."""

import pytest

from shared_runtime.enforce import ContractViolation, enforce
from shared_schemas.etl_to_ml import TransactionInstance


def test_enforce_explains_failures_in_one_message(instances):
    bad = instances.copy()
    bad.loc[0, "amount"] = -5.0
    with pytest.raises(ContractViolation) as info:
        enforce(bad, TransactionInstance)
    message = str(info.value)
    assert "TransactionInstance" in message
    assert "amount: greater_than_or_equal_to(0.0) failed for 1 row(s), e.g. [-5.0]" in message
