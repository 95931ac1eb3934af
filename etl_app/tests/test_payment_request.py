"""The PaymentRequest contract accepts nothing the batch's source screening refuses, except what
a contract cannot know (an event time outside the run's plausible range)."""

import pandas as pd
from hypothesis import HealthCheck, given, settings

from etl_app.pipelines.source import EventTimeBounds, screen_rows, source_payment_schema
from shared_schemas.gateway_to_etl import PaymentRequest
from shared_schemas.strategies import contract_frames

BOUNDS = EventTimeBounds(pd.Timestamp("2025-01-01"), pd.Timestamp("2025-07-01"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contract_frames(PaymentRequest, size=5))
def test_valid_requests_pass_source_screening(frame):
    requests = PaymentRequest.validate(frame.assign(event_time=pd.Timestamp("2025-03-01 10:00")))
    rows = requests.assign(home_country="US").astype(object)  # as the source extract reads them
    valid, rejected, _ = screen_rows(rows, source_payment_schema(BOUNDS))
    assert rejected.empty, rejected.to_dict("records")
    assert len(valid) == len(requests)
