"""Validate a frame against a contract outside the catalog, with an error a person can act on.

Used where Kedro's catalog validation cannot reach: inside the pipeline model (its input arrives
in memory, not through a catalog) and in services.
"""

from __future__ import annotations

import pandas as pd
import pandera.errors
import pandera.pandas as pa

MAX_EXAMPLES = 3


class ContractViolation(ValueError):
    """Data does not honour a contract. ``failures`` lists (column, check, n_rows, examples)."""

    def __init__(self, contract: str, failures: list[tuple[str, str, int, list[object]]]):
        self.contract = contract
        self.failures = failures
        lines = [
            f"- {column}: {check} failed for {n} row(s), e.g. {examples}"
            for column, check, n, examples in failures
        ]
        super().__init__(
            f"Input does not satisfy the {contract} contract "
            f"({len(failures)} check(s) failed):\n" + "\n".join(lines)
        )


def failures_of(exc: pandera.errors.SchemaErrors) -> list[tuple[str, str, int, list[object]]]:
    """Group pandera failure cases by (column, check) with counts and a few examples."""
    cases = exc.failure_cases
    grouped = cases.groupby(
        [cases["column"].fillna("<table>").astype(str), cases["check"].astype(str)], sort=False
    )["failure_case"]
    return [
        (column, check, len(values), values.head(MAX_EXAMPLES).tolist())
        for (column, check), values in grouped
    ]


def enforce(df: pd.DataFrame, model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """Return ``df`` validated (and coerced) by ``model``; raise :class:`ContractViolation`."""
    try:
        return model.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        raise ContractViolation(model.Config.name or model.__name__, failures_of(exc)) from None
