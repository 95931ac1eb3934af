"""Top contributing features of a decision, for any model behind the pyfunc interface.

Occlusion against a reference profile: for each feature group, the transaction is re-scored with
that group set to its typical value (median, or most frequent value, over recently published
instances) and the contribution is how much the score drops. All variants of a request are
scored in one ``predict`` call. Groups keep the contract's row rules: counts of nested windows
are replaced together (medians of nested windows stay nested) and the hour of day moves
``event_time`` with it.

It explains what the served model does, whatever its family (boosted trees, a logistic
regression), through the same pipeline model, at the cost of one extra batch predict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shared_schemas.etl_to_ml import TransactionInstance

ID = TransactionInstance.transaction_id
TIME = TransactionInstance.event_time
HOUR = TransactionInstance.hour_of_day


def reference_profile(reference: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """Typical value of each column: median of numbers (ints stay ints), else the mode."""
    profile: dict[str, Any] = {}
    for column in columns:
        values = reference[column].dropna()
        if values.empty:
            raise ValueError(f"No values of {column} in the reference sample.")
        kind = values.dtype.kind
        if kind == "f":
            profile[column] = float(values.median())
        elif kind in "iu":
            profile[column] = int(np.floor(values.median()))  # floor keeps nested windows nested
        else:
            profile[column] = values.mode().iloc[0]
    return profile


class Explainer:
    def __init__(self, reference: pd.DataFrame, groups: dict[str, list[str]], top_k: int) -> None:
        self.groups = groups
        self.top_k = top_k
        self.profile = reference_profile(reference, [c for cs in groups.values() for c in cs])

    def variants(self, rows: pd.DataFrame) -> pd.DataFrame:
        """For each row, one copy per group with that group at its typical value."""
        copies = []
        for columns in self.groups.values():
            copy = rows.copy()
            for column in columns:
                copy[column] = self.profile[column]
            copies.append(copy)
        variants = pd.concat(copies, ignore_index=True)
        # the hour of day is a view of event_time (row rule hour_matches_event_time)
        shift = pd.to_timedelta(variants[HOUR] - variants[TIME].dt.hour, unit="h")
        variants[TIME] = variants[TIME] + shift
        variants[ID] = np.arange(len(variants), dtype=np.int64)  # ids must be unique
        return variants

    def explain(self, model: Any, rows: pd.DataFrame, scores: np.ndarray) -> list[list[dict]]:
        """Per row, up to ``top_k`` groups that raised the score most, with how much."""
        # the variants keep every contract rule of the request's rows (tested), so they take the
        # model's validated path: the contract is checked once per request, on the request
        variant_scores = np.asarray(model.predict_valid(self.variants(rows))["score"], dtype=float)
        by_group = variant_scores.reshape(len(self.groups), len(rows))  # group-major order
        contributions = scores[np.newaxis, :] - by_group
        names = list(self.groups)
        out = []
        for i in range(len(rows)):
            order = np.argsort(-contributions[:, i], kind="stable")[: self.top_k]
            out.append(
                [
                    {"feature": names[g], "contribution": round(float(contributions[g, i]), 6)}
                    for g in order
                    if contributions[g, i] > 0
                ]
            )
        return out
