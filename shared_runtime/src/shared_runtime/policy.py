"""The decision policy: approve, review or decline a payment from its calibrated fraud score.

One definition for every place that decides or judges decisions: training (the thresholds it
reports and the validation cost), the promotion gate (its cost metric), user_app's batch and
online scoring (the decisions), and monitoring (the realised cost of published decisions).

The policy follows from the business cost model (``decision_costs`` in the monorepo's
``conf/shared.yml``, its only home) and a calibrated score ``p`` (the probability of fraud):

* approving costs ``p * missed_fraud``, a review costs ``review`` (and catches the fraud if there
  is one), declining costs ``(1 - p) * false_decline`` (a declined fraud costs nothing);
* a review is the cheapest action for some score only when
  ``review / missed_fraud < 1 - review / false_decline``; then review once
  ``p >= review / missed_fraud`` (a review beats approving) and decline once
  ``p >= 1 - review / false_decline`` (declining beats reviewing);
* otherwise never review: one cut-off ``false_decline / (missed_fraud + false_decline)``,
  approve below it and decline from it (declining beats approving); both thresholds equal it.

Each payment thus gets the action of lowest expected cost (a score at a threshold, where two
actions cost the same, takes the stricter one).

The cost of decisions against outcomes counts all three: ``missed_fraud`` per approved fraud,
``review`` per review, ``false_decline`` per declined legitimate payment, divided by the number
of payments. Plain numpy (no pandas, Kedro or MLflow): user_app, ml_app and the served model
import it, and etl_app's environment has no MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

APPROVE, REVIEW, DECLINE = "approve", "review", "decline"
DECISIONS = (APPROVE, REVIEW, DECLINE)
COST_KEYS = ("missed_fraud", "review", "false_decline")
SOURCE = "decision_costs in conf/shared.yml"


def classify(scores: Any, review_threshold: float, decline_threshold: float) -> np.ndarray:
    """approve / review / decline for each score, given the two thresholds (a numpy str array);
    a score at a threshold takes the stricter decision."""
    s = np.asarray(scores, dtype=float)
    return np.select([s >= decline_threshold, s >= review_threshold], [DECLINE, REVIEW], APPROVE)


@dataclass(frozen=True)
class DecisionPolicy:
    """The cost model (per payment, one currency) and the thresholds it implies."""

    missed_fraud: float
    review: float
    false_decline: float

    @classmethod
    def from_costs(cls, costs: Mapping[str, Any]) -> DecisionPolicy:
        """The policy of a cost model such as ``{"missed_fraud": 150, "review": 5, ...}``.

        Raises:
            ValueError: a cost is missing, unknown, not a number or not positive.
        """
        missing = [k for k in COST_KEYS if k not in costs]
        unknown = sorted(set(costs) - set(COST_KEYS))
        if missing or unknown:
            raise ValueError(
                f"The cost model needs exactly {list(COST_KEYS)}; missing {missing}, unknown "
                f"{unknown} ({SOURCE})."
            )
        values = {}
        for key in COST_KEYS:
            try:
                values[key] = float(costs[key])
            except (TypeError, ValueError):
                raise ValueError(f"Cost {key}={costs[key]!r} is not a number ({SOURCE}).") from None
            if not values[key] > 0:
                raise ValueError(f"Cost {key}={costs[key]!r} must be positive ({SOURCE}).")
        return cls(**values)

    @property
    def reviews(self) -> bool:
        """Whether a review is the cheapest action for some scores (an open interval of them)."""
        return self.review / self.missed_fraud < 1.0 - self.review / self.false_decline

    @property
    def review_threshold(self) -> float:
        """Scores from here on are reviewed (or declined): a review beats approving, or, when
        reviews never pay, the single approve/decline cut-off (equal to the decline threshold)."""
        if self.reviews:
            return self.review / self.missed_fraud
        return self.false_decline / (self.missed_fraud + self.false_decline)

    @property
    def decline_threshold(self) -> float:
        """Scores from here on are declined: declining beats reviewing, or, when reviews never
        pay, beats approving (``false_decline / (missed_fraud + false_decline)``)."""
        if self.reviews:
            return 1.0 - self.review / self.false_decline
        return self.review_threshold

    def decide(self, scores: Any) -> np.ndarray:
        """approve / review / decline for each score (a numpy array of str)."""
        return classify(scores, self.review_threshold, self.decline_threshold)

    def cost_per_transaction(self, is_fraud: Any, decisions: Any) -> float:
        """Average cost of ``decisions`` given the outcomes (NaN for no payment).

        Raises:
            ValueError: lengths differ or a decision is not approve / review / decline.
        """
        y = np.asarray(is_fraud).astype(bool)
        d = np.asarray(decisions).astype(str)
        if y.shape != d.shape:
            raise ValueError(f"{len(y)} outcomes but {len(d)} decisions.")
        unknown = set(np.unique(d)) - set(DECISIONS)
        if unknown:
            raise ValueError(f"Unknown decision(s) {sorted(unknown)}: expected {DECISIONS}.")
        if not len(y):
            return float("nan")
        total = (
            self.missed_fraud * np.count_nonzero(y & (d == APPROVE))
            + self.review * np.count_nonzero(d == REVIEW)
            + self.false_decline * np.count_nonzero(~y & (d == DECLINE))
        )
        return float(total / len(y))

    def expected_cost(self, is_fraud: Any, scores: Any) -> float:
        """Average cost per payment of deciding ``scores`` by this policy, against outcomes."""
        return self.cost_per_transaction(is_fraud, self.decide(scores))

    def cost_without_model(self, is_fraud: Any) -> float:
        """Average cost per payment of approving everything (the baseline a model must beat)."""
        y = np.asarray(is_fraud).astype(bool)
        return self.cost_per_transaction(y, np.full(len(y), APPROVE))

    def describe(self) -> dict[str, Any]:
        """What to record with a run or a decision: the costs and the thresholds they imply."""
        return {
            "costs": asdict(self),
            "review_threshold": self.review_threshold,
            "decline_threshold": self.decline_threshold,
            "rule": (
                "if review/missed_fraud < 1 - review/false_decline: review if score >= "
                "review/missed_fraud, decline if score >= 1 - review/false_decline; otherwise "
                "never review: decline if score >= false_decline/(missed_fraud + false_decline)"
            ),
        }
