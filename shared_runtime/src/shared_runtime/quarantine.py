"""Split a batch into rows that honour a contract and rows that do not, losing none.

Producers call :func:`split_valid_rows` before publishing: valid rows go to the exchange, rejected
rows go to a quarantine dataset together with the checks they failed, and the counts are logged.
A batch whose reject ratio exceeds the producer's limit fails loudly instead, so a broken source
cannot quietly shrink what downstream apps see.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import pandera.errors
import pandera.pandas as pa

from shared_runtime.enforce import failure_columns

FAILED_CHECKS = "failed_checks"
_MAX_PASSES = 3


@dataclass(frozen=True)
class QuarantineReport:
    """Counts of one split: rows_in == rows_valid + rows_rejected always holds."""

    contract: str
    rows_in: int
    rows_valid: int
    rows_rejected: int
    failures_by_check: dict[str, int] = field(default_factory=dict)

    @property
    def reject_ratio(self) -> float:
        return self.rows_rejected / self.rows_in if self.rows_in else 0.0

    def as_dict(self) -> dict[str, object]:
        """Plain counts for a quality-report dataset or MLflow."""
        return {
            "contract": self.contract,
            "rows_in": self.rows_in,
            "rows_valid": self.rows_valid,
            "rows_quarantined": self.rows_rejected,
            "reject_ratio": self.reject_ratio,
            "failures_by_check": dict(self.failures_by_check),
        }

    def summary(self) -> str:
        checks = ", ".join(f"{name}: {n}" for name, n in sorted(self.failures_by_check.items()))
        return (
            f"{self.contract}: {self.rows_in} rows in, {self.rows_valid} valid, "
            f"{self.rows_rejected} quarantined ({self.reject_ratio:.2%})"
            + (f" - failed checks: {checks}" if checks else "")
        )


class RejectRatioExceeded(ValueError):
    """Too many rows failed the contract for the batch to be published."""

    def __init__(self, report: QuarantineReport, limit: float, examples: pd.DataFrame):
        self.report = report
        super().__init__(
            f"{report.summary()}. That exceeds the allowed reject ratio {limit:.2%}, so nothing "
            f"was published. First rejected rows:\n{examples.to_string(max_colwidth=60)}\n"
            "Fix the source data, or raise max_reject_ratio in the pipeline's parameters if "
            "this is expected."
        )


def _row_failures(failure_cases: pd.DataFrame) -> dict[object, list[str]]:
    """Map row index -> ['column:check', ...] for the failures tied to a row."""
    row_level = failure_cases[failure_cases["index"].notna()]
    labels = failure_columns(row_level) + ":" + row_level["check"].astype(str)
    per_row: dict[object, list[str]] = {}
    for idx, label in zip(row_level["index"], labels, strict=True):
        checks = per_row.setdefault(idx, [])
        if label not in checks:
            checks.append(label)
    return per_row


def split_valid_rows(
    df: pd.DataFrame,
    model: type[pa.DataFrameModel] | pa.DataFrameSchema,
    max_reject_ratio: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, QuarantineReport]:
    """Validate ``df`` against ``model`` (a contract, or a schema derived from one); return
    (valid rows, rejected rows, report).

    Rejected rows keep their original values (as text, since they may not fit the contract's
    types) plus a ``failed_checks`` column such as ``"amount:greater_than_or_equal_to(0.0)"``.
    Failures that concern the whole table (a missing or unexpected column) cannot be quarantined
    row by row and are raised as pandera ``SchemaErrors``.

    Raises:
        RejectRatioExceeded: when ``max_reject_ratio`` is given and more rows than that failed.
    """
    schema = model if isinstance(model, pa.DataFrameSchema) else model.to_schema()
    name = schema.name or getattr(model, "__name__", "schema")
    frame = df.reset_index(drop=True)
    per_row: dict[object, list[str]] = {}
    remaining = frame
    # A value that cannot be coerced (text in a number column) also makes pandera report the
    # column's other checks as failing for the whole table; once the rows it names are set
    # aside, the rest validates. Only failures that remain table-wide are raised.
    for _ in range(_MAX_PASSES):
        try:
            valid = schema.validate(remaining, lazy=True)
            break
        except pandera.errors.SchemaErrors as exc:
            failures = _row_failures(exc.failure_cases)
            if not failures:
                raise
            for idx, labels in failures.items():
                known = per_row.setdefault(idx, [])
                known.extend(label for label in labels if label not in known)
            remaining = remaining.drop(index=list(failures))
    else:
        raise RuntimeError(f"{name}: rows kept failing after {_MAX_PASSES} passes: {per_row}")
    valid = valid.reset_index(drop=True)
    rejected = _rejected_frame(frame.loc[list(per_row)], per_row)
    counts = Counter(label for labels in per_row.values() for label in labels)
    report = QuarantineReport(name, len(frame), len(valid), len(rejected), dict(counts))
    if max_reject_ratio is not None and report.reject_ratio > max_reject_ratio:
        raise RejectRatioExceeded(report, max_reject_ratio, rejected.head(5))
    return valid, rejected, report


def _rejected_frame(rows: pd.DataFrame, per_row: dict[object, list[str]]) -> pd.DataFrame:
    as_text = rows.astype(object).where(rows.notna(), None).astype("string")
    checks = pd.Series([";".join(per_row.get(i, [])) for i in rows.index], index=rows.index)
    return as_text.assign(**{FAILED_CHECKS: checks.astype("string")}).reset_index(drop=True)
