"""Small valid examples of the contracts (tests keep them valid), for docs, model input examples
and API schemas."""

from __future__ import annotations

import pandas as pd


def transaction_instance_example() -> pd.DataFrame:
    """Two valid TransactionInstance rows: an everyday payment and a suspicious one."""
    return pd.DataFrame(
        {
            "transaction_id": [1001, 1002],
            "card_id": [17, 42],
            "customer_id": [12, 35],
            "merchant_id": [301, 977],
            "event_time": pd.to_datetime(["2025-06-03 12:41:07", "2025-06-03 03:12:55"]),
            "amount": [23.5, 812.0],
            "merchant_category": ["grocery", "electronics"],
            "merchant_country": ["US", "NG"],
            "is_foreign": [False, True],
            "hour_of_day": [12, 3],
            "day_of_week": [1, 1],
            "tx_count_5m": [0, 1],
            "tx_count_15m": [0, 2],
            "tx_count_1h": [0, 2],
            "tx_count_24h": [2, 3],
            "tx_count_7d": [9, 4],
            "amount_sum_1h": [0.0, 1290.0],
            "amount_sum_24h": [61.2, 1330.4],
            "amount_sum_7d": [288.0, 1402.1],
            "seconds_since_prev_tx": [14_820.0, 410.0],
            "amount_to_median_ratio": [0.9, 19.6],
            "is_new_merchant": [False, True],
            "is_new_country": [False, True],
            "merchant_chargebacks_30d": [0, 6],
            "merchant_tx_30d": [812, 40],
            "merchant_tx_10m": [1, 0],
            "merchant_chargeback_rate_30d": [0.0, 6 / 41],
        }
    )


def payment_request_example() -> pd.DataFrame:
    """The two example instances' payments, as a gateway sends them (PaymentRequest rows)."""
    from shared_schemas.gateway_to_etl import PaymentRequest  # noqa: PLC0415

    return transaction_instance_example()[list(PaymentRequest.to_schema().columns)]
