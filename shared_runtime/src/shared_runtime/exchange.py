"""The Kedro dataset every app uses for data that crosses an app boundary.

Kedro's catalog already validates a dataset against its contract (the ``validator:`` key); this
dataset adds only what Kedro lacks for a shared exchange. Each exchange dataset is a **Delta Lake
table** (Parquet files plus a transaction log, through ``deltalake``), on a local disk or on object
storage (``s3://...``) alike:

* **partitioned by day** of a timestamp column (``<filepath>/day=YYYY-MM-DD/...``): a producer
  re-running a window replaces exactly that window's days (idempotent) and never the rest;
* **a whole window is published in one commit**: readers see the previous window or the new
  one, never a mix of days, on local disk and on S3 (where a rename is not atomic). A run killed
  mid-publish leaves the table as it was: files it wrote are in no commit, so no reader sees
  them. Concurrent writers are serialised by Delta's optimistic commits (on S3 through
  conditional puts: ``AWS_CONDITIONAL_PUT=etag``); a publish that loses the race to a writer of
  the same days is written again on top of the winner's commit, so both runs complete;
* **contract version stamping**: each commit records the shared-schemas version, the producer's
  release, the write time and the days it replaced; loading refuses a table holding data from an
  incompatible contract version;
* **physical schema check**: with ``contract:``, the table's column names, Arrow types and nulls
  are checked against the contract (:mod:`shared_schemas.physical`) before anything is returned;
* **traceability**: a load reads one table version and remembers it (:attr:`loaded_version`);
  ``table_version:`` reads an older one (Delta time travel), e.g. to reproduce a training run.

Any Delta reader reads the exchange: ``deltalake.DeltaTable(path).to_pandas()``, Polars
``read_delta``, Spark with delta-spark, DuckDB's ``delta_scan``. Plain Parquet readers must not
read the folder itself: it keeps the files of replaced windows until they are vacuumed.

Example catalog entry (producer side)::

    instances:
      type: shared_runtime.exchange.ExchangeParquetDataset
      filepath: ${shared:exchange_root}/instances
      partition_by: event_time
      producer: etl-app
      contract: &instance_contract shared_schemas.etl_to_ml.TransactionInstance
      validator:
        class: shared_runtime.enforce.ContractValidator
        on: [save]
        options: {contract: *instance_contract}
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Literal

import fsspec
import pandas as pd
import pyarrow as pa
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

from shared_schemas.physical import PhysicalContract
from shared_schemas.versioning import CONTRACT_VERSION, check_compatible, distribution_version

logger = logging.getLogger(__name__)

META_CONTRACT = "shared_schemas.contract_version"
META_PRODUCER = "shared_schemas.producer"
META_WRITTEN_AT = "shared_schemas.written_at"
META_DAYS = "shared_schemas.days"
META_DIGEST = "shared_schemas.content_digest"
PARTITION_KEY = "day"
TEMP_PREFIX = ".tmp-"
# A temporary file older than this belongs to a run that died: no publish takes an hour per file.
STALE_TEMP_AGE = timedelta(hours=1)
# An appended save whose rows one of this many latest commits already holds is a retry
# (a publish that succeeded but whose caller did not hear so), and adds nothing.
RETRY_LOOKBACK_COMMITS = 100
# A publish that loses the commit race to a concurrent writer of the same days is written again.
COMMIT_ATTEMPTS = 5
# Delta has no unsigned integers: they are written as the next wider signed type, losslessly.
_SIGNED = {
    pa.uint8(): pa.int16(),
    pa.uint16(): pa.int32(),
    pa.uint32(): pa.int64(),
    pa.uint64(): pa.int64(),
}


def content_digest(data: pd.DataFrame) -> str:
    """A digest of a frame's columns and rows, to recognise the same rows saved again."""
    digest = hashlib.sha256(",".join(map(str, data.columns)).encode())
    digest.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:32]


class ExchangeSchemaError(DatasetError):
    """A published table does not have the physical schema its contract requires."""


def sweep_stale_temp_files(fs: fsspec.AbstractFileSystem, pattern: str) -> int:
    """Delete temporary files matching ``pattern`` older than :data:`STALE_TEMP_AGE`.

    A run killed between writing and renaming leaves its hidden temporary file behind; readers
    never see it, but it takes space forever. Younger files may belong to a run still writing
    (two schedulers, a retry racing the original), so they are left alone.
    """
    cutoff = datetime.now(UTC) - STALE_TEMP_AGE
    swept = 0
    for path in fs.glob(pattern):
        modified = fs.modified(path)
        if modified.tzinfo is None:
            modified = modified.replace(tzinfo=UTC)
        if modified < cutoff:
            fs.rm(path)
            swept += 1
    if swept:
        logger.info("Swept %d stale temporary file(s) matching %s", swept, pattern)
    return swept


def _writable(table: pa.Table) -> pa.Table:
    """The table with types Delta stores: unsigned integers widened to signed ones."""
    schema = pa.schema(
        [field.with_type(_SIGNED.get(field.type, field.type)) for field in table.schema]
    )
    return table.cast(schema) if schema != table.schema else table


class ExchangeParquetDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """A day-partitioned Delta table: one commit per publish, contract-version checks."""

    def __init__(
        self,
        *,
        filepath: str,
        partition_by: str,
        producer: str | None = None,
        mode: Literal["overwrite", "append"] = "overwrite",
        last_partitions: int | None = None,
        contract: str | type | None = None,
        table_version: int | None = None,
        credentials: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> None:
        """
        Args:
            filepath: The table's folder, local or ``s3://bucket/...``.
            partition_by: Timestamp column whose calendar day names the partition.
            producer: Distribution name of the writing app (e.g. ``etl-app``); its installed
                version is stamped into every commit.
            mode: ``overwrite`` replaces the days present in a save, in one commit (idempotent
                re-runs); ``append`` adds the rows of each save (logs); saving the same rows
                again (a retry) adds nothing.
            last_partitions: Load only the newest N day partitions (e.g. a recent reference
                sample); all of them by default.
            contract: The pandera contract (a ``DataFrameModel`` or its dotted path) whose
                physical schema the table must have; the same contract as the entry's
                ``validator:`` (a YAML anchor keeps them one).
            table_version: Load this version of the table instead of the latest.
            credentials: Delta storage options (e.g. ``AWS_ENDPOINT_URL``); by default they come
                from the environment (``AWS_*`` variables), as for boto3.
            metadata: Kedro metadata, unused by the dataset.
            missing_ok: Load a table never published as no rows (the contract's columns)
                instead of failing: for an input a world may never produce, such as the
                online service's decisions. Needs ``contract``.
        """
        if mode not in ("overwrite", "append"):
            raise DatasetError(f"mode must be 'overwrite' or 'append', not {mode!r}.")
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._root = PurePosixPath(path)
        self._uri = str(self._root) if protocol == "file" else f"{protocol}://{self._root}"
        self._storage = dict(credentials or {})
        self._partition_by = partition_by
        self._producer = producer
        self._mode = mode
        self._last_partitions = last_partitions
        self._table_version = table_version
        if isinstance(contract, str):
            from kedro.utils import load_obj  # noqa: PLC0415

            contract = load_obj(contract)
        self._physical = PhysicalContract.of(contract) if contract is not None else None
        if missing_ok and self._physical is None:
            raise DatasetError("missing_ok needs `contract:`: it gives the columns of no rows.")
        self._missing_ok = missing_ok
        self.loaded_version: int | None = None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._root),
            "protocol": self._protocol,
            "partition_by": self._partition_by,
            "mode": self._mode,
            "producer": self._producer,
            "last_partitions": self._last_partitions,
            "table_version": self._table_version,
            "contract": self._physical.name if self._physical else None,
        }

    @property
    def uri(self) -> str:
        """Where the table is: a local path or ``s3://...``."""
        return self._uri

    def _table(self, version: int | None = None):
        """The Delta table (at ``version``), or None when nothing was ever published."""
        from deltalake import DeltaTable  # noqa: PLC0415 (only readers and writers need it)
        from deltalake.exceptions import TableNotFoundError  # noqa: PLC0415

        try:
            return DeltaTable(self._uri, version=version, storage_options=self._storage or None)
        except TableNotFoundError:
            return None

    # --- writing -------------------------------------------------------------------------------
    def _stamp(self, days: list[str], digest: str) -> dict[str, str]:
        producer = (
            f"{self._producer}=={distribution_version(self._producer)}" if self._producer else ""
        )
        return {
            META_CONTRACT: CONTRACT_VERSION,
            META_PRODUCER: producer,
            META_WRITTEN_AT: datetime.now(UTC).isoformat(),
            META_DAYS: ",".join(days),
            META_DIGEST: digest,
        }

    def _save(self, data: pd.DataFrame) -> None:
        from deltalake import CommitProperties, write_deltalake  # noqa: PLC0415
        from deltalake.exceptions import CommitFailedError  # noqa: PLC0415

        if self._partition_by not in data.columns:
            raise DatasetError(
                f"Cannot partition by '{self._partition_by}': column missing from the data "
                f"(columns: {list(data.columns)})."
            )
        if PARTITION_KEY in data.columns:
            raise DatasetError(
                f"The column '{PARTITION_KEY}' is the exchange's partition key; rename it."
            )
        if data.empty:
            logger.info("Nothing to publish to %s: no rows", self._uri)
            return
        days = pd.to_datetime(data[self._partition_by]).dt.strftime("%Y-%m-%d")
        window = sorted(days.unique())
        digest = content_digest(data)
        if self._mode == "append" and self._already_appended(digest):
            logger.info("%s already holds these %d rows (a retried save)", self._uri, len(data))
            return
        # Grouped by day, each day's rows in the order saved: a reader gets them back so.
        ordered = data.assign(**{PARTITION_KEY: days.to_numpy()}).sort_values(
            PARTITION_KEY, kind="stable"
        )
        table = _writable(pa.Table.from_pandas(ordered, preserve_index=False))
        table = table.replace_schema_metadata(None)
        quoted = ", ".join(f"'{day}'" for day in window)
        try:
            for attempt in range(1, COMMIT_ATTEMPTS + 1):
                try:
                    write_deltalake(
                        self._uri,
                        table,
                        mode=self._mode,
                        partition_by=[PARTITION_KEY],
                        # overwrite: the window's days are replaced in the commit adding the rows
                        predicate=(
                            f"{PARTITION_KEY} IN ({quoted})" if self._mode == "overwrite" else None
                        ),
                        schema_mode="merge",  # a compatible contract change adds optional columns
                        storage_options=self._storage or None,
                        commit_properties=CommitProperties(
                            custom_metadata=self._stamp(window, digest)
                        ),
                    )
                    break
                except CommitFailedError:
                    # another writer committed to these days first (two schedulers, a retry
                    # racing the original): publishing the same window again on top of its
                    # commit is what the later run means, so write it again
                    if attempt == COMMIT_ATTEMPTS:
                        raise
                    logger.warning("%s: a concurrent commit won; publishing again", self._uri)
                    time.sleep(random.uniform(0.1, 0.5) * attempt)  # jitter: not in lockstep
        except Exception as exc:
            raise DatasetError(
                f"Publishing {len(data):,} rows ({window[0]} .. {window[-1]}) to {self._uri} "
                f"failed, so nothing of it was published: readers still see the previous "
                f"version of the table. Re-run the pipeline once the cause is fixed. "
                f"Cause: {type(exc).__name__}: {str(exc)[:2000]}"
            ) from exc
        logger.info(
            "Published %d rows in %d partition(s) to %s (contract %s)",
            len(data),
            len(window),
            self._uri,
            CONTRACT_VERSION,
        )

    def _already_appended(self, digest: str) -> bool:
        table = self._table()
        if table is None:
            return False
        return any(
            commit.get(META_DIGEST) == digest for commit in table.history(RETRY_LOOKBACK_COMMITS)
        )

    # --- reading -------------------------------------------------------------------------------
    def commits(self, version: int | None = None) -> list[dict[str, Any]]:
        """The stamps of the commits whose rows the table holds (at ``version``), newest first:
        every write back to the last one that replaced the whole table."""
        # The history is read from the latest table: delta-rs numbers the history of a table
        # loaded at an older version wrongly (relative to that version).
        table = self._table()
        if table is None:
            return []
        target = version if version is not None else self._table_version
        target = table.version() if target is None else target
        out: list[dict[str, Any]] = []
        for commit in table.history():
            if commit.get("version", 0) > target:
                continue
            if commit.get("operation") == "RESTORE":  # the rows of the version it restored
                restored = int((commit.get("operationParameters") or {})["version"])
                return out + self.commits(restored)
            if commit.get("operation") not in ("WRITE", "CREATE TABLE"):
                continue
            out.append(
                {
                    "version": commit.get("version"),
                    "contract_version": commit.get(META_CONTRACT),
                    "producer": commit.get(META_PRODUCER, ""),
                    "written_at": commit.get(META_WRITTEN_AT, ""),
                    "days": commit.get(META_DAYS, ""),
                    "rows": (commit.get("operationMetrics") or {}).get("num_added_rows"),
                }
            )
            parameters = commit.get("operationParameters") or {}
            if parameters.get("mode") == "Overwrite" and not parameters.get("predicate"):
                break
        return out

    def _newest_days(self, table) -> list[str] | None:
        if not self._last_partitions:
            return None
        days = sorted({p[PARTITION_KEY] for p in table.partitions()})
        return days[-self._last_partitions :]

    def _read(self, table) -> pa.Table:
        """The table's rows, day by day in order, each file's rows in the order written."""
        newest = self._newest_days(table)
        actions = pa.table(table.get_add_actions(flatten=True))
        order = sorted(
            zip(
                actions[f"partition.{PARTITION_KEY}"].to_pylist(),
                actions["modification_time"].cast(pa.int64()).to_pylist(),
                actions["path"].to_pylist(),
                strict=True,
            )
        )
        rank = {
            path: i for i, (day, _, path) in enumerate(order) if newest is None or day in newest
        }
        dataset = table.to_pyarrow_dataset()
        fragments = [f for f in dataset.get_fragments() if self._relative(f.path) in rank]
        fragments.sort(key=lambda f: rank[self._relative(f.path)])
        if not fragments:
            return dataset.schema.empty_table()
        return pa.concat_tables([f.to_table(schema=dataset.schema) for f in fragments])

    def _relative(self, path: str) -> str:
        """A fragment's path relative to the table root, as the Delta log names it."""
        root = str(self._root).strip("/")
        path = path.strip("/")
        return path[len(root) + 1 :] if path.startswith(root + "/") else path

    def _refuse_pre_delta_layout(self) -> None:
        """Exchange folders written before the exchange became Delta tables (shared-runtime
        0.1, local disks only) hold bare Parquet files: say so instead of reporting an empty
        dataset."""
        if self._protocol != "file":
            return
        found = fsspec.filesystem("file").glob(str(self._root / "*" / "*.parquet"))
        if found:
            raise DatasetError(
                f"{self._uri} holds {len(found)} Parquet files without a Delta log: it was "
                "published before the exchange became Delta tables. Delete the folder and re-run "
                "the producing app's pipeline to republish it."
            )

    def _aligned(self, table: pa.Table) -> pa.Table:
        """The table in the contract's order and types. A column absent from every commit (an
        optional column) is left out; every cast is a widening the physical check allowed."""
        if self._physical is None:
            return table
        target = self._physical.target_schema(
            [name for name in self._physical.columns if name in table.schema.names]
        )
        return table.select(target.names).cast(target)

    def _load(self) -> pd.DataFrame:
        table = self._table(self._table_version)
        if table is None:
            self._refuse_pre_delta_layout()
        if (table is None or not table.file_uris()) and self._missing_ok:
            logger.info("Nothing published in %s yet: no rows", self._uri)
            required = [n for n, (_, req, _) in self._physical.columns.items() if req]
            return self._physical.target_schema(required).empty_table().to_pandas()
        if table is None or not table.file_uris():
            raise DatasetError(
                f"No published data in {self._uri}. Run the producing app's pipeline first "
                f"(see the README: `make run-etl` publishes instances and labels)."
            )
        version = table.version()
        where = f"{self._uri} (table version {version})"
        for commit in self.commits(version):
            stamped = commit["contract_version"]
            check_compatible(stamped, where=f"{where}, commit {commit['version']}")
        rows = self._read(table).drop_columns([PARTITION_KEY])
        if self._physical is not None:
            problems = self._physical.problems_in(
                rows.schema, lambda column: rows.column(column).null_count
            )
            if problems:
                raise ExchangeSchemaError(
                    f"{where} does not have the physical schema of the {self._physical.name} "
                    "contract, so nothing was loaded:\n- "
                    + "\n- ".join(problems)
                    + "\nRe-publish it with the producing app's pipeline (e.g. `make run-etl`)."
                )
        self.loaded_version = version
        return self._aligned(rows).to_pandas()

    def _exists(self) -> bool:
        table = self._table()
        return table is not None and bool(table.file_uris())

    def partitions(self) -> list[str]:
        """Published partition days, e.g. ``['2024-01-01', ...]``."""
        table = self._table(self._table_version)
        return sorted({p[PARTITION_KEY] for p in table.partitions()}) if table else []

    def version(self) -> int | None:
        """The table's latest version (one per publish), or None before the first."""
        table = self._table()
        return table.version() if table is not None else None


class QuarantineDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Rejected rows (see :mod:`shared_runtime.quarantine`): one Parquet file per run, never
    overwritten and never colliding.

    Kedro's ``versioned: true`` names a version after the session's start time in milliseconds;
    two runs started together (a retry racing the original, two schedulers) got the same version
    and the second failed on save. Here every save writes ``<UTC time>-<random>.parquet``
    atomically (hidden temporary file, then rename), so concurrent runs each keep their own
    record. ``load`` returns the newest file's rows.
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._folder = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._folder)}

    def _files(self) -> list[str]:
        found = self._fs.glob(str(self._folder / "*.parquet"))
        return sorted(f for f in found if not PurePosixPath(f).name.startswith("."))

    def _save(self, data: pd.DataFrame) -> None:
        self._fs.makedirs(str(self._folder), exist_ok=True)
        sweep_stale_temp_files(self._fs, str(self._folder / f"{TEMP_PREFIX}*"))
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = str(self._folder / f"{TEMP_PREFIX}{name}")
        with self._fs.open(tmp, "wb") as stream:
            data.to_parquet(stream, index=False)
        self._fs.mv(tmp, str(self._folder / name))

    def _load(self) -> pd.DataFrame:
        files = self._files()
        if not files:
            raise DatasetError(f"No quarantine file in {self._folder}: nothing was rejected yet.")
        return pd.read_parquet(files[-1])

    def _exists(self) -> bool:
        return bool(self._files())
