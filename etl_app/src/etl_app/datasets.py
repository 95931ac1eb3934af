"""etl_app's own Kedro datasets."""

from __future__ import annotations

from typing import Any

import sqlalchemy
from kedro_datasets.pandas import SQLQueryDataset


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
