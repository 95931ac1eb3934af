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


def failure_columns(cases: pd.DataFrame) -> pd.Series:
    """The column each failure case is about; ``<row>`` for row rules, ``<table>`` for the table.

    pandera repeats a failed row rule (a dataframe check) once per column of the row, and names
    the schema as the "column" of table-level failures; both collapse to one label here.
    """
    table_level = cases["schema_context"].eq("DataFrameSchema")
    collapsed = cases["index"].notna().map({True: "<row>", False: "<table>"})
    return collapsed.where(table_level, cases["column"].astype(str))


def failures_of(exc: pandera.errors.SchemaErrors) -> list[tuple[str, str, int, list[object]]]:
    """Group pandera failure cases by (column, check) with counts and a few examples."""
    cases = exc.failure_cases.assign(column=failure_columns)
    cases = cases.drop_duplicates(["column", "check", "index"])
    grouped = cases.groupby(["column", cases["check"].astype(str)], sort=False)["failure_case"]
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


class ContractValidator:
    """A Kedro catalog validator for a contract, reporting each failed check once.

    Kedro's built-in pandera adapter repeats a failed row rule once per column of the failing
    row (that is how pandera reports dataframe checks), which buries the real problems. This
    validator groups failures as :func:`failures_of` does. Use it through Kedro's native
    ``validator:`` key::

        validator:
          class: shared_runtime.enforce.ContractValidator
          on: [save]
          options: {contract: shared_schemas.etl_to_ml.TransactionInstance}
    """

    def __init__(self, contract: str) -> None:
        from kedro.utils import load_obj  # noqa: PLC0415 (keep kedro out of plain imports)

        self.contract_path = contract
        self.model: type[pa.DataFrameModel] = load_obj(contract)

    def __repr__(self) -> str:
        return f"ContractValidator({self.contract_path})"

    def validate(self, data: pd.DataFrame) -> pd.DataFrame:
        from kedro.validation.exceptions import (  # noqa: PLC0415
            CheckFailure,
            DataValidationError,
        )

        try:
            return enforce(data, self.model)
        except ContractViolation as exc:
            failures = [
                CheckFailure(
                    message=f"Check '{check}' failed for {column}",
                    check=check,
                    column=column,
                    failure_count=n,
                    failure_examples=examples,
                )
                for column, check, n, examples in exc.failures
            ]
            raise DataValidationError(
                f"Data does not satisfy the {self.contract_path} contract",
                validator=self.contract_path,
                failures=failures,
            ) from exc
