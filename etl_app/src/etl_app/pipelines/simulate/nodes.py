"""A deterministic source-system simulator: a card issuer's payments database, with delayed fraud.

No data can be downloaded, and a template needs realistic data, so etl_app ships a simulator that
fills a real SQL database standing in for production. Everything is vectorised numpy driven by
one seed, so the same parameters always give the identical database.

The world it simulates:

* customers (home country, typical spend, activity, night-owl habit) holding one or two cards;
* merchants (category, country, popularity); a few are *compromised* for a time window: cards
  used there are later attacked;
* ordinary payments: mostly at a card's favourite domestic merchants, in daytime;
* attacks on compromised or randomly stolen cards: bursts of payments minutes apart, at risky,
  often foreign merchants, often at night, for unusual amounts;
* each payment's true fraud probability is a function of that behaviour (velocity, unusual amount,
  new merchant/country, night, compromised merchant, being part of an attack); the label is drawn
  from it, and chargebacks for fraud arrive days to weeks later;
* optionally, from ``drift.start`` the attackers change tactics ("card testing": small domestic
  amounts in long bursts), so a model trained before then degrades.

Only the source tables (customers, cards, merchants, transactions, chargebacks) are what a real
system would hold. The true probabilities go to a separate ``oracle`` table that only benchmarks
and evaluation of the template read, never features or training.

The simulation has a clock: ``as_of`` (default: end of the period). Payments after it and
chargebacks received after it are not in the database yet; a later ``as_of`` with the same seed
reveals more of the same timeline, which is how multi-period runs advance time.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

DAY = 86_400
# Category -> (spend multiplier, popularity weight, risky for attackers)
CATEGORIES: dict[str, tuple[float, float, bool]] = {
    "grocery": (0.8, 0.26, False),
    "restaurant": (0.7, 0.18, False),
    "fuel": (1.0, 0.12, False),
    "apparel": (1.6, 0.09, False),
    "electronics": (3.5, 0.06, True),
    "travel": (5.0, 0.05, True),
    "online_services": (0.6, 0.12, True),
    "entertainment": (0.9, 0.07, False),
    "health": (1.2, 0.04, False),
    "jewelry": (6.0, 0.01, True),
}
# Hour-of-day profile of ordinary spending (sums to 1 after normalisation).
_DAY_PROFILE = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.5, 3, 5, 6, 6.5, 7, 8, 7, 6.5, 6.5, 7, 8, 8.5, 8, 6.5, 5, 3.5, 2]
)


def _by_merchant(merchants: pd.DataFrame, field: int) -> np.ndarray:
    """A CATEGORIES field (0 spend multiplier, 2 risky) for every merchant, by merchant id."""
    return merchants["category"].map({k: v[field] for k, v in CATEGORIES.items()}).to_numpy()


def _hour_offsets(rng: np.random.Generator, n: int, night_share: np.ndarray) -> np.ndarray:
    """Seconds into the day: a daytime profile, or (with prob. night_share) 0-5 h at night."""
    day_hours = rng.choice(24, size=n, p=_DAY_PROFILE / _DAY_PROFILE.sum())
    night_hours = rng.integers(0, 6, size=n)
    hours = np.where(rng.random(n) < night_share, night_hours, day_hours)
    return hours * 3600 + rng.integers(0, 3600, size=n)


def generate_parties(params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Customers, their cards and merchants (with the latent compromise windows of some).

    Returns:
        customers, cards, merchants. Latent columns (used only by the simulator and the oracle)
        start with an underscore and are never written to the source tables.
    """
    rng = np.random.default_rng(params["seed"])
    start = pd.Timestamp(params["start"])
    n_cust = params["n_customers"]
    countries = list(params["home_countries"])
    country_p = np.array(list(params["home_countries"].values()), dtype=float)

    customers = pd.DataFrame(
        {
            "customer_id": np.arange(n_cust, dtype=np.int64),
            "home_country": rng.choice(countries, size=n_cust, p=country_p / country_p.sum()),
            "created_at": start - pd.to_timedelta(rng.integers(30, 3000, n_cust), unit="D"),
            "_typical_amount": rng.lognormal(np.log(params["typical_amount"]), 0.6, n_cust),
            "_tx_per_day": rng.gamma(2.0, params["tx_per_card_per_day"] / 2.0, n_cust),
            "_night_share": rng.beta(1.0, 25.0, n_cust),
        }
    )

    owners = np.repeat(
        customers["customer_id"].to_numpy(),
        1 + (rng.random(n_cust) < params["second_card_share"]),
    )
    cards = pd.DataFrame(
        {
            "card_id": np.arange(len(owners), dtype=np.int64),
            "customer_id": owners,
            "issued_at": customers["created_at"].to_numpy()[owners]
            + pd.to_timedelta(rng.integers(0, 30, len(owners)), unit="D"),
        }
    )

    n_merch = params["n_merchants"]
    cat_names = list(CATEGORIES)
    cat_p = np.array([CATEGORIES[c][1] for c in cat_names])
    domestic = rng.random(n_merch) < params["domestic_merchant_share"]
    merchant_country = np.where(
        domestic,
        rng.choice(countries, size=n_merch, p=country_p / country_p.sum()),
        rng.choice(list(params["foreign_countries"]), size=n_merch),
    )
    compromised = rng.random(n_merch) < params["compromised_merchant_share"]
    comp_start = rng.integers(0, params["days"] * DAY, n_merch)
    comp_len = rng.integers(
        params["compromise_days"][0] * DAY, params["compromise_days"][1] * DAY, n_merch
    )
    merchants = pd.DataFrame(
        {
            "merchant_id": np.arange(n_merch, dtype=np.int64),
            "category": rng.choice(cat_names, size=n_merch, p=cat_p / cat_p.sum()),
            "country": merchant_country,
            "_popularity": rng.pareto(1.5, n_merch) + 1.0,
            "_compromised_from": np.where(compromised, comp_start, -1),
            "_compromised_to": np.where(compromised, comp_start + comp_len, -1),
        }
    )
    logger.info(
        "Simulated %d customers, %d cards, %d merchants (%d compromised)",
        n_cust,
        len(cards),
        n_merch,
        int(compromised.sum()),
    )
    return customers, cards, merchants


def _pick_merchants(
    rng: np.random.Generator, pool: np.ndarray, weights: np.ndarray, n: int
) -> np.ndarray:
    """Draw n merchants from ``pool`` proportionally to ``weights`` (vectorised)."""
    cdf = np.cumsum(weights) / weights.sum()
    return pool[np.minimum(np.searchsorted(cdf, rng.random(n)), len(pool) - 1)]


def _ordinary_times(
    rng: np.random.Generator,
    params: dict[str, Any],
    customers: pd.DataFrame,
    cards: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    """(card index, second of the period) of every ordinary payment of the period."""
    cust = cards["customer_id"].to_numpy()
    rate = customers["_tx_per_day"].to_numpy()[cust] * params["days"]
    per_card = rng.poisson(rate)
    card_idx = np.repeat(np.arange(len(cards)), per_card)
    n = len(card_idx)
    night_share = customers["_night_share"].to_numpy()[cust[card_idx]]
    ts = rng.integers(0, params["days"], n) * DAY + _hour_offsets(rng, n, night_share)
    return card_idx, ts


def favourite_merchants(
    rng: np.random.Generator,
    params: dict[str, Any],
    customers: pd.DataFrame,
    cards: pd.DataFrame,
    merchants: pd.DataFrame,
) -> np.ndarray:
    """Each card's favourite merchants (cards x ``favourite_merchants``), of its home country."""
    popularity = merchants["_popularity"].to_numpy()
    merchant_country = merchants["country"].to_numpy()
    favourites_per_card = params["favourite_merchants"]
    fav = np.empty((len(cards), favourites_per_card), dtype=np.int64)
    card_home = customers["home_country"].to_numpy()[cards["customer_id"].to_numpy()]
    for country in np.unique(card_home):  # a handful of countries, not rows
        pool = np.flatnonzero(merchant_country == country)
        rows = np.flatnonzero(card_home == country)
        fav[rows] = _pick_merchants(
            rng, pool, popularity[pool], len(rows) * favourites_per_card
        ).reshape(len(rows), favourites_per_card)
    return fav


def world_favourite_merchants(
    params: dict[str, Any], customers: pd.DataFrame, cards: pd.DataFrame, merchants: pd.DataFrame
) -> np.ndarray:
    """The favourites :func:`generate_transactions` drew for ``params``' world (its draws replayed:
    this follows its order of random draws up to the favourites, so keep the two in step)."""
    rng = np.random.default_rng([params["seed"], 1])
    _ordinary_times(rng, params, customers, cards)
    return favourite_merchants(rng, params, customers, cards, merchants)


def ordinary_merchants(
    rng: np.random.Generator,
    params: dict[str, Any],
    favourites: np.ndarray,
    card_idx: np.ndarray,
    merchants: pd.DataFrame,
) -> np.ndarray:
    """Where ordinary payments of ``card_idx`` happen: mostly favourites, sometimes anywhere."""
    n = len(card_idx)
    slot = np.minimum(rng.geometric(0.35, n) - 1, favourites.shape[1] - 1)
    merchant = favourites[card_idx, slot]
    wander = rng.random(n) < params["explore_share"]
    merchant[wander] = _pick_merchants(
        rng, np.arange(len(merchants)), merchants["_popularity"].to_numpy(), int(wander.sum())
    )
    return merchant


def ordinary_amounts(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    cards: pd.DataFrame,
    merchants: pd.DataFrame,
    card_idx: np.ndarray,
    merchant: np.ndarray,
) -> np.ndarray:
    """Amounts of ordinary payments: the customer's typical spend, scaled by the category."""
    spend = customers["_typical_amount"].to_numpy()[cards["customer_id"].to_numpy()[card_idx]]
    multiplier = _by_merchant(merchants, 0)
    return spend * multiplier[merchant] * rng.lognormal(0.0, 0.5, len(card_idx))


def _ordinary_payments(
    rng: np.random.Generator,
    params: dict[str, Any],
    customers: pd.DataFrame,
    cards: pd.DataFrame,
    merchants: pd.DataFrame,
) -> pd.DataFrame:
    # Each card shops mostly at a handful of favourite merchants of its home country.
    card_idx, ts = _ordinary_times(rng, params, customers, cards)
    fav = favourite_merchants(rng, params, customers, cards, merchants)
    merchant = ordinary_merchants(rng, params, fav, card_idx, merchants)
    amount = ordinary_amounts(rng, customers, cards, merchants, card_idx, merchant)
    return pd.DataFrame(
        {"card_id": card_idx, "merchant_id": merchant, "ts": ts, "amount": amount, "attack": False}
    )


def burst_lengths(
    rng: np.random.Generator, params: dict[str, Any], drifted: np.ndarray
) -> np.ndarray:
    """Payments in each attack burst (card testing, ``drifted``, makes longer bursts)."""
    burst = np.minimum(rng.geometric(0.3, len(drifted)), params["max_burst"])
    return np.where(drifted, burst + 3, burst)


def _attacks(
    rng: np.random.Generator,
    params: dict[str, Any],
    customers: pd.DataFrame,
    cards: pd.DataFrame,
    merchants: pd.DataFrame,
    ordinary: pd.DataFrame,
) -> pd.DataFrame:
    """Bursts of fraudulent-looking payments on stolen cards."""
    # Cards used at a merchant during its compromise window are stolen with some probability and
    # attacked a few days later; other cards are stolen at random.
    m_from = merchants["_compromised_from"].to_numpy()[ordinary["merchant_id"].to_numpy()]
    m_to = merchants["_compromised_to"].to_numpy()[ordinary["merchant_id"].to_numpy()]
    ts = ordinary["ts"].to_numpy()
    exposed = (m_from >= 0) & (ts >= m_from) & (ts < m_to)
    stolen = exposed & (rng.random(len(ts)) < params["theft_prob_at_compromised"])
    stolen_cards = ordinary["card_id"].to_numpy()[stolen]
    stolen_at = ts[stolen] + rng.exponential(3 * DAY, stolen.sum()).astype(np.int64)
    n_random = rng.poisson(params["random_theft_per_card_per_day"] * params["days"] * len(cards))
    cards_hit = np.concatenate([stolen_cards, rng.integers(0, len(cards), n_random)])
    day0 = np.concatenate([stolen_at // DAY, rng.integers(0, params["days"], n_random)])

    n_attacks = len(cards_hit)
    drift_start = params["drift"]["start"]
    drift_day = (
        (pd.Timestamp(drift_start) - pd.Timestamp(params["start"])).days
        if drift_start
        else params["days"] + 1
    )
    drifted_attack = day0 >= drift_day
    burst = burst_lengths(rng, params, drifted_attack)
    start_ts = day0 * DAY + _hour_offsets(rng, n_attacks, np.full(n_attacks, 0.55))
    attack_idx = np.repeat(np.arange(n_attacks), burst)
    n = len(attack_idx)
    gaps = rng.exponential(params["burst_gap_minutes"] * 60, n).astype(np.int64) + 1
    first = np.r_[True, attack_idx[1:] != attack_idx[:-1]]
    gaps[first] = 0
    # offset within the burst = cumulative gap since the burst's first payment
    cum = np.cumsum(gaps)
    offsets = cum - np.repeat(cum[first], burst)
    pay_ts = start_ts[attack_idx] + offsets
    drifted = drifted_attack[attack_idx]

    merchant, amount = attack_payments(
        rng, params, customers, cards, merchants, cards_hit[attack_idx], drifted
    )
    return pd.DataFrame(
        {
            "card_id": cards_hit[attack_idx],
            "merchant_id": merchant,
            "ts": pay_ts,
            "amount": amount,
            "attack": True,
        }
    )


def attack_payments(
    rng: np.random.Generator,
    params: dict[str, Any],
    customers: pd.DataFrame,
    cards: pd.DataFrame,
    merchants: pd.DataFrame,
    card_ids: np.ndarray,
    drifted: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(merchant, amount) of attack payments on ``card_ids``: risky, often foreign merchants and
    unusual amounts; card testing (``drifted``) at grocery/online merchants for tiny amounts."""
    n = len(card_ids)
    risky = _by_merchant(merchants, 2)
    popularity = merchants["_popularity"].to_numpy()
    card_cust = cards["customer_id"].to_numpy()[card_ids]
    merchant_country = merchants["country"].to_numpy()
    foreign_pool = np.flatnonzero(
        risky & ~np.isin(merchant_country, list(params["home_countries"]))
    )
    risky_pool = np.flatnonzero(risky)
    testing_pool = np.flatnonzero(
        merchants["category"].isin(["grocery", "online_services"]).to_numpy()
    )
    merchant = np.where(
        rng.random(n) < 0.6,
        _pick_merchants(rng, foreign_pool, popularity[foreign_pool], n),
        _pick_merchants(rng, risky_pool, popularity[risky_pool], n),
    )
    merchant = np.where(
        drifted, _pick_merchants(rng, testing_pool, popularity[testing_pool], n), merchant
    )
    spend = customers["_typical_amount"].to_numpy()[card_cust]
    multiplier = _by_merchant(merchants, 0)
    amount = np.where(
        drifted,
        rng.uniform(0.5, 5.0, n),  # card testing: tiny amounts
        spend * multiplier[merchant] * rng.lognormal(0.9, 0.6, n),
    )
    return merchant, amount


def generate_transactions(
    customers: pd.DataFrame, cards: pd.DataFrame, merchants: pd.DataFrame, params: dict[str, Any]
) -> pd.DataFrame:
    """All payments of the period, ordinary and attack bursts, with their true fraud probability.

    Returns one row per payment, ordered by time, with ``transaction_id`` in time order and the
    latent columns ``_attack`` and ``_fraud_probability``.
    """
    rng = np.random.default_rng([params["seed"], 1])
    ordinary = _ordinary_payments(rng, params, customers, cards, merchants)
    logger.info("Simulated %d ordinary payments", len(ordinary))
    attacks = _attacks(rng, params, customers, cards, merchants, ordinary)
    logger.info("Simulated %d payments in attack bursts", len(attacks))
    tx = pd.concat([ordinary, attacks], ignore_index=True)
    tx = tx[(tx["ts"] >= 0) & (tx["ts"] < params["days"] * DAY)]
    tx = tx.sort_values(["card_id", "ts"], kind="stable").reset_index(drop=True)

    probability = _true_fraud_probability(tx, customers, cards, merchants, params)
    order = np.argsort(tx["ts"].to_numpy(), kind="stable")
    out = tx.iloc[order].reset_index(drop=True)
    out["_fraud_probability"] = probability[order]
    out.insert(0, "transaction_id", np.arange(len(out), dtype=np.int64))
    out["event_time"] = pd.Timestamp(params["start"]) + pd.to_timedelta(out["ts"], unit="s")
    out["amount"] = source_amounts(out["amount"].to_numpy())
    return out.rename(columns={"attack": "_attack"})


def source_amounts(amount: np.ndarray) -> np.ndarray:
    """Amounts as the source system records them: cents, within what a card may pay."""
    return np.round(np.clip(amount, 0.01, 25_000.0), 2)


def _true_fraud_probability(
    tx: pd.DataFrame,
    customers: pd.DataFrame,
    cards: pd.DataFrame,
    merchants: pd.DataFrame,
    params: dict[str, Any],
) -> np.ndarray:
    """P(fraud) of each payment given the full simulated state (tx sorted by card, time)."""
    card = tx["card_id"].to_numpy()
    ts = tx["ts"].to_numpy()
    merchant = tx["merchant_id"].to_numpy()
    # velocity: the card's payments in the previous hour (sorted by card then time, so a
    # searchsorted on a combined key counts them without a loop)
    key = card.astype(np.int64) * (params["days"] * DAY * 4) + ts
    prev_1h = np.arange(len(key)) - np.searchsorted(key, key - 3600, side="left")
    # first payment of this card at this merchant / in this country within the period
    cust = cards["customer_id"].to_numpy()[card]
    m_country = merchants["country"].to_numpy()[merchant]
    new_merchant = ~pd.DataFrame({"c": card, "m": merchant}).duplicated().to_numpy()
    new_country = ~pd.DataFrame({"c": card, "k": m_country}).duplicated().to_numpy()
    foreign = m_country != customers["home_country"].to_numpy()[cust]
    multiplier = _by_merchant(merchants, 0)
    expected = customers["_typical_amount"].to_numpy()[cust] * multiplier[merchant]
    log_ratio = np.log(tx["amount"].to_numpy() / expected)
    hour = (ts % DAY) // 3600
    night = hour < 6
    m_from = merchants["_compromised_from"].to_numpy()[merchant]
    compromised = (
        (m_from >= 0) & (ts >= m_from) & (ts < merchants["_compromised_to"].to_numpy()[merchant])
    )

    w = params["fraud_weights"]
    logit = (
        w["intercept"]
        + w["attack"] * tx["attack"].to_numpy()
        + w["velocity"] * np.log1p(prev_1h)
        + w["amount"] * np.clip(log_ratio, -1.0, 3.0)
        + w["new_merchant"] * new_merchant
        + w["new_country"] * new_country
        + w["foreign"] * foreign
        + w["night"] * night
        + w["compromised_merchant"] * compromised
    )
    drift_start = params["drift"]["start"]
    if drift_start:
        after = ts >= (pd.Timestamp(drift_start) - pd.Timestamp(params["start"])).days * DAY
        small = tx["amount"].to_numpy() < 5.0
        logit = logit + after * params["drift"]["small_amount_weight"] * small
    return 1.0 / (1.0 + np.exp(-logit))


def settle_fraud(
    transactions: pd.DataFrame, params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw each payment's fraud outcome and the chargebacks that report it later.

    Returns:
        oracle (transaction_id, fraud_probability, is_fraud, is_attack) and chargebacks
        (chargeback_id, transaction_id, received_at, reason_code).
    """
    rng = np.random.default_rng([params["seed"], 2])
    p = transactions["_fraud_probability"].to_numpy()
    is_fraud = rng.random(len(p)) < p
    oracle = pd.DataFrame(
        {
            "transaction_id": transactions["transaction_id"],
            "fraud_probability": p,
            "is_fraud": is_fraud,
            "is_attack": transactions["_attack"],
        }
    )
    cb = params["chargebacks"]
    reported = is_fraud & (rng.random(len(p)) < cb["report_prob"])
    delay_days = np.clip(
        rng.lognormal(np.log(cb["median_delay_days"]), cb["delay_sigma"], reported.sum()),
        cb["min_delay_days"],
        cb["max_delay_days"],
    )
    fraud_tx = transactions.loc[reported]
    chargebacks = pd.DataFrame(
        {
            "chargeback_id": np.arange(reported.sum(), dtype=np.int64),
            "transaction_id": fraud_tx["transaction_id"].to_numpy(),
            "received_at": fraud_tx["event_time"].to_numpy()
            + pd.to_timedelta(delay_days * DAY, unit="s").to_numpy(),
            "reason_code": np.where(
                rng.random(reported.sum()) < 0.8, "card_not_present_fraud", "counterfeit_card"
            ),
        }
    ).sort_values("received_at", kind="stable")
    logger.info(
        "Fraud rate %.3f%% (%d of %d payments), %d chargebacks",
        100 * is_fraud.mean(),
        int(is_fraud.sum()),
        len(p),
        len(chargebacks),
    )
    return oracle, chargebacks.reset_index(drop=True)


def publish_source_tables(
    customers: pd.DataFrame,
    cards: pd.DataFrame,
    merchants: pd.DataFrame,
    transactions: pd.DataFrame,
    chargebacks: pd.DataFrame,
    oracle: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[pd.DataFrame, ...]:
    """What the production database holds at the clock ``as_of``: no latent columns, no future.

    Returns:
        customers, cards, merchants, transactions, chargebacks, oracle as source tables.
    """
    end_of_period = pd.Timestamp(params["start"]) + pd.Timedelta(days=params["days"])
    as_of = pd.Timestamp(params["as_of"]) if params.get("as_of") else end_of_period
    # Chargebacks for late frauds arrive after the period: at the clock they do not exist yet.
    tx = transactions[transactions["event_time"] < as_of]
    cbs = chargebacks[chargebacks["received_at"] < as_of]
    source_tx = tx[["transaction_id", "card_id", "merchant_id", "amount", "event_time"]]
    logger.info(
        "Source system as of %s: %d payments, %d chargebacks received",
        as_of,
        len(source_tx),
        len(cbs),
    )
    return (
        customers[["customer_id", "home_country", "created_at"]],
        cards,
        merchants[["merchant_id", "category", "country"]],
        source_tx,
        cbs,
        oracle[oracle["transaction_id"].isin(source_tx["transaction_id"])],
    )
