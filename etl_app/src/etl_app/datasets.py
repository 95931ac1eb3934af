"""etl_app's own Kedro datasets."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy
from kedro_datasets.pandas import SQLQueryDataset, SQLTableDataset


class PortableSQLQueryDataset(SQLQueryDataset):
    """kedro-datasets' ``pandas.SQLQueryDataset`` whose ``sql`` is a SQLAlchemy ``text()`` clause.

    ``pandas.read_sql_query`` hands a plain string to the database driver, so its bind
    parameters must be in that driver's own style (``:name`` for sqlite3, ``%(name)s`` for
    psycopg): one catalog could not read both SQLite and Postgres. As ``text()``, the query's
    ``:name`` parameters are bound by SQLAlchemy for whatever dialect the URL names. (A query
    read from ``filepath`` is passed as the parent passes it.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(self._load_args.get("sql"), str):
            self._load_args["sql"] = sqlalchemy.text(self._load_args["sql"])


class IndexedSQLTableDataset(SQLTableDataset):
    """kedro-datasets' ``pandas.SQLTableDataset`` that (re)creates the table's indexes on save.

    ``to_sql(if_exists="replace")`` drops the table with its indexes; the source system's tables
    are looked up per card and per merchant at request time (:mod:`etl_app.online`), which must
    not scan the table. ``indexes`` maps an index name to its columns, e.g.
    ``{ix_transactions_card_time: [card_id, event_time]}``. ``CREATE INDEX IF NOT EXISTS`` is
    portable (SQLite, Postgres).
    """

    def __init__(self, *args: Any, indexes: dict[str, list[str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._indexes = dict(indexes or {})

    def save(self, data: pd.DataFrame) -> None:
        super().save(data)
        table = self._save_args["name"]
        with self.engine.begin() as con:
            for name, columns in self._indexes.items():
                con.execute(
                    sqlalchemy.text(
                        f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})"
                    )
                )
