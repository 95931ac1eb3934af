"""Point-in-time feature definitions, as one set-based SQL query.

Every window frame is ``RANGE BETWEEN <n> PRECEDING AND 1 PRECEDING`` over integer epoch seconds:
it sees only rows strictly before the payment, so a feature can never depend on anything that
happened at or after the payment's own time. The input holds only payments that passed source
screening (:mod:`etl_app.pipelines.source`): a broken or quarantined row never reaches this
query, so it cannot leak into the features of the card's or merchant's other payments.

Every value is exact, whatever the engine, the thread count or the order rows are summed in:
money is summed in whole cents (BIGINT) and divided once, the amount-to-median ratio divides
whole cents by a median of whole cents, times are whole epoch seconds. Two runs over the same
source give the same bits. The SQL uses only standard window functions, so the same text runs on
DuckDB (default engine) and Spark SQL.

Input relations:
  ``payments``    one row per payment: _row, in_window, transaction_id, card_id, customer_id,
                  merchant_id, amount, event_time, merchant_category, merchant_country, home_country
  ``chargebacks`` one row per chargeback already received: merchant_id, received_at
"""

from __future__ import annotations

MINUTE = 60
HOUR = 3_600
DAY = 86_400
#: The merchant aggregates' window (payments and chargebacks received), in days.
MERCHANT_WINDOW_DAYS = 30


def feature_sql(lookback_days: int, merchant_window_days: int = MERCHANT_WINDOW_DAYS) -> str:
    """The feature query; ``lookback_days`` bounds the card history every feature may see."""
    lookback = int(lookback_days) * DAY
    merchant_window = int(merchant_window_days) * DAY
    card = "PARTITION BY card_id ORDER BY ts RANGE BETWEEN {} PRECEDING AND 1 PRECEDING"
    return f"""
WITH tx AS (
    SELECT
        *,
        CAST(FLOOR(epoch(event_time)) AS BIGINT) AS ts,  -- whole seconds, truncated on every engine
        CAST(ROUND(amount * 100) AS BIGINT) AS cents  -- exact sums, in any order
    FROM payments
),
card_features AS (
    SELECT
        _row,
        -- "hot" windows: attack bursts are payments minutes apart on one card
        COUNT(*) OVER w5m AS tx_count_5m,
        COUNT(*) OVER w15m AS tx_count_15m,
        COUNT(*) OVER w1h AS tx_count_1h,
        COUNT(*) OVER w24h AS tx_count_24h,
        COUNT(*) OVER w7d AS tx_count_7d,
        COALESCE(SUM(cents) OVER w1h, 0) / 100.0 AS amount_sum_1h,
        COALESCE(SUM(cents) OVER w24h, 0) / 100.0 AS amount_sum_24h,
        COALESCE(SUM(cents) OVER w7d, 0) / 100.0 AS amount_sum_7d,
        CAST(ts - MAX(ts) OVER wlb AS DOUBLE) AS seconds_since_prev_tx,
        -- in cents: the median of integers (halves at most) is exact on both engines
        cents / NULLIF(MEDIAN(cents) OVER wlb, 0.0) AS amount_to_median_ratio
    FROM tx
    WINDOW
        w5m AS ({card.format(5 * MINUTE)}),
        w15m AS ({card.format(15 * MINUTE)}),
        w1h AS ({card.format(HOUR)}),
        w24h AS ({card.format(DAY)}),
        w7d AS ({card.format(7 * DAY)}),
        wlb AS ({card.format(lookback)})
),
novelty AS (
    SELECT
        _row,
        COUNT(*) OVER (
            PARTITION BY card_id, merchant_id ORDER BY ts
            RANGE BETWEEN {lookback} PRECEDING AND 1 PRECEDING
        ) = 0 AS is_new_merchant,
        COUNT(*) OVER (
            PARTITION BY card_id, merchant_country ORDER BY ts
            RANGE BETWEEN {lookback} PRECEDING AND 1 PRECEDING
        ) = 0 AS is_new_country
    FROM tx
),
merchant_events AS (
    SELECT _row, merchant_id, ts, 1 AS is_tx, 0 AS is_cb
    FROM tx
    UNION ALL
    SELECT NULL AS _row, merchant_id, CAST(FLOOR(epoch(received_at)) AS BIGINT) AS ts, 0, 1
    FROM chargebacks
),
merchant_features AS (
    SELECT _row, merchant_chargebacks_30d, merchant_tx_30d, merchant_tx_10m
    FROM (
        SELECT
            _row,
            COALESCE(SUM(is_cb) OVER wm, 0) AS merchant_chargebacks_30d,
            COALESCE(SUM(is_tx) OVER wm, 0) AS merchant_tx_30d,
            COALESCE(SUM(is_tx) OVER wm10m, 0) AS merchant_tx_10m
        FROM merchant_events
        WINDOW
            wm AS (
                PARTITION BY merchant_id ORDER BY ts
                RANGE BETWEEN {merchant_window} PRECEDING AND 1 PRECEDING
            ),
            wm10m AS (
                PARTITION BY merchant_id ORDER BY ts
                RANGE BETWEEN {10 * MINUTE} PRECEDING AND 1 PRECEDING
            )
    ) AS m
    WHERE _row IS NOT NULL
)
SELECT
    tx._row,
    tx.transaction_id,
    tx.card_id,
    tx.customer_id,
    tx.merchant_id,
    tx.event_time,
    tx.amount,
    tx.merchant_category,
    tx.merchant_country,
    tx.merchant_country <> tx.home_country AS is_foreign,
    -- calendar fields as arithmetic on epoch seconds (UTC), identical on every engine
    -- (1970-01-01 was a Thursday: Monday = 0)
    CAST(FLOOR((tx.ts % 86400) / 3600.0) AS BIGINT) AS hour_of_day,
    CAST((FLOOR(tx.ts / 86400.0) + 3) % 7 AS BIGINT) AS day_of_week,
    c.tx_count_5m,
    c.tx_count_15m,
    c.tx_count_1h,
    c.tx_count_24h,
    c.tx_count_7d,
    c.amount_sum_1h,
    c.amount_sum_24h,
    c.amount_sum_7d,
    c.seconds_since_prev_tx,
    c.amount_to_median_ratio,
    n.is_new_merchant,
    n.is_new_country,
    m.merchant_chargebacks_30d,
    m.merchant_tx_30d,
    m.merchant_tx_10m,
    CAST(m.merchant_chargebacks_30d AS DOUBLE) / (m.merchant_tx_30d + 1)
        AS merchant_chargeback_rate_30d
FROM tx
JOIN card_features AS c ON c._row = tx._row
JOIN novelty AS n ON n._row = tx._row
JOIN merchant_features AS m ON m._row = tx._row
WHERE tx.in_window
ORDER BY tx._row
"""
