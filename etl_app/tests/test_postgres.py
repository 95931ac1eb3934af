"""The same catalog on a real Postgres source system: the simulator writes it, the ETL reads it
(`:name` binds through SQLAlchemy), and what is published equals the SQLite run's, bit for bit."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy

from etl_app.online import PAYMENTS_SELECT, REQUEST_COLUMNS, OnlineFeaturizer
from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_app, isolated_env, kedro_run, throwaway_postgres
from shared_schemas.etl_to_ml import TransactionInstance

APP = Path(__file__).resolve().parents[1]
SMALL = {"simulate.n_customers": 400, "simulate.n_merchants": 200, "simulate.days": 45}
WINDOW = {"window.start": "2025-01-20", "window.end": "2025-02-10", "labels_as_of": "2025-02-15"}


def published(root: Path, name: str) -> pd.DataFrame:
    frame = ExchangeParquetDataset(
        filepath=str(root / "data/exchange" / name), partition_by="event_time"
    ).load()
    return frame.sort_values("transaction_id").reset_index(drop=True)


def etl(root: Path, env: dict[str, str]) -> dict[str, pd.DataFrame]:
    project = isolated_app(APP, root)
    kedro_run(project, "simulate", SMALL, env=env)
    kedro_run(project, "etl_instances", WINDOW, env=env)
    kedro_run(project, "etl_labels", WINDOW, env=env)
    return {name: published(root, name) for name in ("instances", "labels")}


@pytest.fixture(scope="module")
def postgres():
    with throwaway_postgres("source_system") as server:
        yield f"{server}/source_system"


def test_postgres_source_publishes_what_sqlite_publishes(postgres, tmp_path):
    on_sqlite = etl(tmp_path / "sqlite", isolated_env(tmp_path / "sqlite"))
    env = isolated_env(tmp_path / "postgres", {"ETL_SOURCE_DB_URL": postgres})
    on_postgres = etl(tmp_path / "postgres", env)
    with sqlalchemy.create_engine(postgres).connect() as con:
        count = con.execute(sqlalchemy.text("SELECT count(*) FROM transactions")).scalar_one()
    assert count > 5_000  # the simulator wrote the source system to Postgres
    assert len(on_sqlite["instances"]) > 1_000 and len(on_sqlite["labels"]) > 10
    for name, frame in on_sqlite.items():
        pd.testing.assert_frame_equal(on_postgres[name], frame, check_exact=True, obj=name)

    # online featurization reads the same Postgres source (indexed lookups, text() binds) and
    # computes the published features of a day's payments, one request at a time
    params = {"lookback_days": 60, "event_time": {"earliest": "2025-01-01", "clock": None,
              "clock_tolerance_minutes": 10}}  # fmt: skip
    featurizer = OnlineFeaturizer(postgres, params)
    with featurizer.engine.connect() as con:
        requests = pd.read_sql(
            sqlalchemy.text(
                f"{PAYMENTS_SELECT} WHERE t.event_time >= '2025-02-03' "
                "AND t.event_time < '2025-02-04' ORDER BY t.transaction_id"
            ),
            con,
        )[REQUEST_COLUMNS]
    online = pd.concat(
        [featurizer.featurize(requests.iloc[[i]]) for i in range(len(requests))],
        ignore_index=True,
    )
    expected = on_postgres["instances"]
    expected = expected[expected["transaction_id"].isin(requests["transaction_id"])]
    assert len(online) == len(requests) == len(expected) > 50
    pd.testing.assert_frame_equal(
        online, TransactionInstance.validate(expected.reset_index(drop=True)), check_exact=True
    )
