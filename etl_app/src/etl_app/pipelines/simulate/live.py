"""The simulated world, going on live: payments after its last one, on a clock that runs.

:func:`continue_world` rebuilds the parties of a simulated source system from the parameters it
was simulated with (:func:`~etl_app.pipelines.simulate.nodes.generate_parties`, and each card's
favourite merchants replayed from :func:`~.nodes.generate_transactions`' draws), and checks them
against the cards and merchants the source database holds. :func:`live_payments` then produces
what happens next, on a clock that starts at the first whole second after the world's last
payment (``offset`` = seconds since then; the driver, :mod:`etl_app.live`, sends each payment when
that much real time has passed):

* ordinary payments: a Poisson stream at ``rate * (1 - attack_share)`` per second; the card is
  drawn by its customer's activity, the merchant and amount by the simulator's own
  :func:`~.nodes.ordinary_merchants` (mostly the card's favourites) and
  :func:`~.nodes.ordinary_amounts`;
* attack bursts: a stolen card (any card), :func:`~.nodes.burst_lengths` payments plus
  ``burst_extra``, ``burst_gap_seconds`` apart on average (so several fall in the same second), at
  :func:`~.nodes.attack_payments`' risky, often foreign merchants, for unusual amounts. Bursts
  start as a Poisson stream too, so that their payments are ``attack_share`` of all.

There is no time-of-day profile: the clock is the wall clock's pace, whatever the hour.
Everything is drawn from ``numpy.random.default_rng([simulate seed, 3, seed, block])`` per block of
:data:`BLOCK_SECONDS`, so the same seed gives the same payments and event times, and a longer run
starts with exactly the payments of a shorter one. Transaction ids continue the world's, in
event-time order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from etl_app.pipelines.simulate import nodes
from shared_schemas.gateway_to_etl import PaymentRequest

logger = logging.getLogger(__name__)

#: Payments are drawn per block of this many seconds of the live clock.
BLOCK_SECONDS = 10
#: The payment as a gateway sends it, plus what only the simulator knows (``attack``) and when it
#: happens on the live clock (``offset``, seconds).
LIVE_COLUMNS = [*PaymentRequest.to_schema().columns, "attack", "offset"]


class WorldMismatch(ValueError):
    """The source database does not hold the world these simulate parameters make."""


@dataclass(frozen=True)
class LiveSettings:
    """How the live stream behaves beyond the simulator's own parameters."""

    attack_share: float = 0.05  # of all payments, in bursts
    burst_extra: int = 2  # a live burst: the simulator's burst length + this many payments
    burst_gap_seconds: float = 0.4  # mean gap between a burst's payments


@dataclass(frozen=True)
class LiveWorld:
    """A simulated world's parties (with their latent behaviour) and where its history ends."""

    params: dict[str, Any]
    customers: pd.DataFrame
    cards: pd.DataFrame
    merchants: pd.DataFrame
    favourites: np.ndarray
    clock_start: pd.Timestamp  # the first live payment happens at or after this instant
    first_transaction_id: int
    card_activity: np.ndarray  # the probability that an ordinary payment is of each card


def continue_world(
    params: dict[str, Any],
    last_event_time: pd.Timestamp | str,
    max_transaction_id: int,
    source_cards: pd.DataFrame | None = None,
    source_merchants: pd.DataFrame | None = None,
) -> LiveWorld:
    """The world simulated with ``params``, continued after its last payment.

    Args:
        params: the ``simulate`` parameters the source system was simulated with.
        last_event_time, max_transaction_id: the source's latest payment time and largest id.
        source_cards, source_merchants: the source tables (``card_id, customer_id`` and
            ``merchant_id, category, country``); if given, they must be the simulated ones.

    Raises:
        WorldMismatch: the source tables are not the parties these parameters make.
    """
    customers, cards, merchants = nodes.generate_parties(params)
    if source_cards is not None:
        _check_same(cards[["card_id", "customer_id"]], source_cards, "cards", params)
    if source_merchants is not None:
        _check_same(
            merchants[["merchant_id", "category", "country"]], source_merchants, "merchants", params
        )
    favourites = nodes.world_favourite_merchants(params, customers, cards, merchants)
    activity = customers["_tx_per_day"].to_numpy()[cards["customer_id"].to_numpy()]
    return LiveWorld(
        params=dict(params),
        customers=customers,
        cards=cards,
        merchants=merchants,
        favourites=favourites,
        clock_start=pd.Timestamp(last_event_time).floor("s") + pd.Timedelta(seconds=1),
        first_transaction_id=int(max_transaction_id) + 1,
        card_activity=activity / activity.sum(),
    )


def _check_same(simulated: pd.DataFrame, source: pd.DataFrame, what: str, params: dict) -> None:
    source = source.reindex(columns=simulated.columns).sort_values(simulated.columns[0])
    same = len(source) == len(simulated) and all(
        (source[c].astype(str).to_numpy() == simulated[c].astype(str).to_numpy()).all()
        for c in simulated.columns
    )
    if not same:
        raise WorldMismatch(
            f"the source database's {what} ({len(source)} rows) are not those the simulate "
            f"parameters make ({len(simulated)} rows with seed {params['seed']}, "
            f"n_customers {params['n_customers']}, n_merchants {params['n_merchants']}): pass the "
            "parameters the source was simulated with (e.g. --params simulate.n_customers=500)"
        )


def _block(
    world: LiveWorld, rate: float, seed: int, block: int, settings: LiveSettings
) -> pd.DataFrame:
    """The payments that start in block ``block`` (bursts may run on into the next ones)."""
    params = world.params
    rng = np.random.default_rng([int(params["seed"]), 3, int(seed), block])
    start = block * BLOCK_SECONDS

    # ordinary payments
    n = rng.poisson(rate * (1.0 - settings.attack_share) * BLOCK_SECONDS)
    offsets = start + rng.uniform(0.0, BLOCK_SECONDS, n)
    card = rng.choice(len(world.cards), size=n, p=world.card_activity)
    merchant = nodes.ordinary_merchants(rng, params, world.favourites, card, world.merchants)
    amount = nodes.ordinary_amounts(
        rng, world.customers, world.cards, world.merchants, card, merchant
    )
    ordinary = pd.DataFrame(
        {"card_id": card, "merchant_id": merchant, "offset": offsets, "amount": amount}
    ).assign(attack=False)

    # attack bursts: a stolen card, many payments seconds apart
    mean_burst = _mean_burst(params, settings)
    n_bursts = rng.poisson(rate * settings.attack_share * BLOCK_SECONDS / mean_burst)
    burst_start = start + rng.uniform(0.0, BLOCK_SECONDS, n_bursts)
    stolen = rng.integers(0, len(world.cards), n_bursts)
    drift_start = params["drift"]["start"]
    after_drift = bool(drift_start) and world.clock_start >= pd.Timestamp(drift_start)
    drifted = np.full(n_bursts, after_drift)
    length = nodes.burst_lengths(rng, params, drifted) + settings.burst_extra
    burst = np.repeat(np.arange(n_bursts), length)
    gaps = rng.exponential(settings.burst_gap_seconds, len(burst))
    first = np.r_[True, burst[1:] != burst[:-1]] if len(burst) else np.zeros(0, bool)
    gaps[first] = 0.0
    cum = np.cumsum(gaps)
    within = cum - np.repeat(cum[first], length)
    card_ids = stolen[burst]
    merchant, amount = nodes.attack_payments(
        rng, params, world.customers, world.cards, world.merchants, card_ids, drifted[burst]
    )
    attacks = pd.DataFrame(
        {
            "card_id": card_ids,
            "merchant_id": merchant,
            "offset": burst_start[burst] + within,
            "amount": amount,
        }
    ).assign(attack=True)
    return pd.concat([ordinary, attacks], ignore_index=True)


def _mean_burst(params: dict[str, Any], settings: LiveSettings) -> float:
    """The mean live burst length (the simulator's distribution, sampled with a fixed seed)."""
    rng = np.random.default_rng([int(params["seed"]), 4])
    return float(nodes.burst_lengths(rng, params, np.zeros(100_000, bool)).mean()) + (
        settings.burst_extra
    )


def live_payments(
    world: LiveWorld,
    rate: float,
    seconds: float,
    seed: int,
    settings: LiveSettings | None = None,
) -> pd.DataFrame:
    """Every payment of the first ``seconds`` of the live clock, in event-time order.

    Returns :data:`LIVE_COLUMNS`: ``event_time`` is a naive UTC timestamp (microseconds),
    ``offset`` the seconds since ``world.clock_start``, ``attack`` whether it is part of a burst.
    """
    settings = settings or LiveSettings()
    if rate <= 0 or seconds <= 0:
        raise ValueError(f"rate and seconds must be positive, got {rate} and {seconds}")
    blocks = [
        _block(world, rate, seed, block, settings)
        for block in range(int(np.ceil(seconds / BLOCK_SECONDS)))
    ]
    frame = pd.concat(blocks, ignore_index=True)
    # microseconds, as the source system stores times
    micros = np.floor(frame["offset"].to_numpy() * 1e6).astype(np.int64)
    frame = frame.assign(micros=micros)[micros < seconds * 1e6]
    frame = frame.sort_values("micros", kind="stable", ignore_index=True)
    card = frame["card_id"].to_numpy(np.int64)
    merchant = frame["merchant_id"].to_numpy(np.int64)
    micros = frame["micros"].to_numpy()
    out = pd.DataFrame(
        {
            "transaction_id": world.first_transaction_id + np.arange(len(frame), dtype=np.int64),
            "card_id": card,
            "customer_id": world.cards["customer_id"].to_numpy()[card],
            "merchant_id": merchant,
            "event_time": world.clock_start + pd.to_timedelta(micros, "us"),
            "amount": nodes.source_amounts(frame["amount"].to_numpy()),
            "merchant_category": world.merchants["category"].to_numpy()[merchant],
            "merchant_country": world.merchants["country"].to_numpy()[merchant],
            "attack": frame["attack"].to_numpy(bool),
            "offset": micros / 1e6,
        }
    )
    logger.info(
        "Live payments: %d in %.0f s from %s (%d in attack bursts)",
        len(out),
        seconds,
        world.clock_start,
        int(out["attack"].sum()),
    )
    return out
