"""The Kedro dataset every app uses for data that crosses an app boundary.

Kedro's catalog already validates a dataset against its contract (the ``validator:`` key); this
dataset adds only what Kedro lacks for a shared exchange:

* **partitioned by day** of a timestamp column (``<filepath>/day=YYYY-MM-DD/*.parquet``), so a
  producer re-running one window replaces exactly that window's days (idempotent) and never the
  rest. The folder key is ``day``, never a column name, so plain readers work on the folder:
  ``pd.read_parquet(path)``, ``pyarrow.dataset.dataset(path, partitioning="hive")`` or DuckDB's
  ``read_parquet('<path>/*/*.parquet')`` (each adds the ``day`` column);
* **atomic publish**: every file is written under a hidden temporary name and renamed into place
  once complete, so a reader never sees a partial file (readers skip names starting with ``.``);
  temporary files left by a killed run are swept by the next publish of the same dataset;
* **contract version stamping**: each file records the shared-schemas version and producer release
  it was written with, and loading refuses data from an incompatible contract version;
* **physical schema check**: with ``contract:``, every file's column names, Arrow types and nulls
  are checked against the contract (:mod:`shared_schemas.physical`) *before* anything is
  concatenated, and a file that does not fit is refused by name.

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
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any, Literal

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

from shared_schemas.physical import PhysicalContract
from shared_schemas.versioning import CONTRACT_VERSION, check_compatible, distribution_version

logger = logging.getLogger(__name__)

META_CONTRACT = b"shared_schemas.contract_version"
META_PRODUCER = b"shared_schemas.producer"
META_WRITTEN_AT = b"shared_schemas.written_at"
PART_FILE = "part-0.parquet"
PARTITION_KEY = "day"
TEMP_PREFIX = ".tmp-"
# A temporary file older than this belongs to a run that died: no publish takes an hour per file.
STALE_TEMP_AGE = timedelta(hours=1)


def _content_name(part: pd.DataFrame, times: pd.Series) -> str:
    """An appended file's name, from its rows: saving the same rows again (a retried publish)
    rewrites the same file instead of appending them twice. The earliest partition timestamp
    leads, so files sort (and load) in time order."""
    digest = hashlib.sha256(",".join(map(str, part.columns)).encode())
    digest.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
    return f"part-{times.min():%Y%m%dT%H%M%S%f}-{digest.hexdigest()[:16]}.parquet"


class ExchangeSchemaError(DatasetError):
    """Published files do not have the physical schema their contract requires."""


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


class ExchangeParquetDataset(AbstractDataset[pd.DataFrame, pd.DataFrame]):
    """Day-partitioned Parquet with atomic publish and contract-version checks."""

    def __init__(
        self,
        *,
        filepath: str,
        partition_by: str,
        producer: str | None = None,
        mode: Literal["overwrite", "append"] = "overwrite",
        last_partitions: int | None = None,
        contract: str | type | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """
        Args:
            filepath: Folder of the dataset; ``<filepath>/day=<YYYY-MM-DD>/*.parquet``.
            partition_by: Timestamp column whose calendar day names the partition.
            producer: Distribution name of the writing app (e.g. ``etl-app``); its installed
                version is stamped into every file.
            mode: ``overwrite`` replaces the days present in a save (idempotent re-runs);
                ``append`` adds a new file per save (logs), named after its rows, so saving
                the same rows again (a retry) adds nothing.
            last_partitions: Load only the newest N day partitions (e.g. a recent reference
                sample); all of them by default.
            contract: The pandera contract (a ``DataFrameModel`` or its dotted path) whose
                physical schema every file must have; the same contract as the entry's
                ``validator:`` (a YAML anchor keeps them one).
            credentials: Passed to the fsspec filesystem.
            fs_args: Extra fsspec filesystem arguments.
            metadata: Kedro metadata, unused by the dataset.
        """
        if mode not in ("overwrite", "append"):
            raise DatasetError(f"mode must be 'overwrite' or 'append', not {mode!r}.")
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._root = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self._partition_by = partition_by
        self._producer = producer
        self._mode = mode
        self._last_partitions = last_partitions
        if isinstance(contract, str):
            from kedro.utils import load_obj  # noqa: PLC0415

            contract = load_obj(contract)
        self._physical = PhysicalContract.of(contract) if contract is not None else None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._root),
            "protocol": self._protocol,
            "partition_by": self._partition_by,
            "mode": self._mode,
            "producer": self._producer,
            "last_partitions": self._last_partitions,
            "contract": self._physical.name if self._physical else None,
        }

    # --- writing -------------------------------------------------------------------------------
    def _stamp(self) -> dict[bytes, bytes]:
        producer = (
            f"{self._producer}=={distribution_version(self._producer)}" if self._producer else ""
        )
        return {
            META_CONTRACT: CONTRACT_VERSION.encode(),
            META_PRODUCER: producer.encode(),
            META_WRITTEN_AT: datetime.now(UTC).isoformat().encode(),
        }

    def _save(self, data: pd.DataFrame) -> None:
        if self._partition_by not in data.columns:
            raise DatasetError(
                f"Cannot partition by '{self._partition_by}': column missing from the data "
                f"(columns: {list(data.columns)})."
            )
        days = pd.to_datetime(data[self._partition_by]).dt.strftime("%Y-%m-%d")
        stamp = self._stamp()
        sweep_stale_temp_files(self._fs, str(self._root / f"{PARTITION_KEY}=*" / f"{TEMP_PREFIX}*"))
        staged: list[tuple[str, str]] = []
        try:
            # Phase 1: write every partition under a hidden temporary name.
            for day, part in data.groupby(days, sort=True):
                folder = self._root / f"{PARTITION_KEY}={day}"
                self._fs.makedirs(str(folder), exist_ok=True)
                final_name = (
                    PART_FILE
                    if self._mode == "overwrite"
                    else _content_name(part, pd.to_datetime(part[self._partition_by]))
                )
                tmp = str(folder / f"{TEMP_PREFIX}{uuid.uuid4().hex}.parquet")
                staged.append((tmp, str(folder / final_name)))
                table = pa.Table.from_pandas(part, preserve_index=False)
                table = table.replace_schema_metadata({**(table.schema.metadata or {}), **stamp})
                with self._fs.open(tmp, "wb") as stream:
                    pq.write_table(table, stream)
        except BaseException:
            for tmp, _ in staged:
                if self._fs.exists(tmp):
                    self._fs.rm(tmp)
            raise
        # Phase 2: publish. A rename is atomic on local disks and object stores alike, so each
        # partition is either the previous complete file or the new complete file.
        for tmp, final in staged:
            self._fs.mv(tmp, final)
        logger.info(
            "Published %d rows in %d partition(s) to %s (contract %s)",
            len(data),
            len(staged),
            self._root,
            CONTRACT_VERSION,
        )

    # --- reading -------------------------------------------------------------------------------
    def _files(self) -> list[str]:
        if not self._fs.exists(str(self._root)):
            return []
        found = self._fs.glob(str(self._root / f"{PARTITION_KEY}=*" / "*.parquet"))
        return sorted(f for f in found if not PurePosixPath(f).name.startswith((".", "_")))

    def _refuse_legacy_layout(self) -> None:
        """Folders named after the column (``event_time=...``, before contracts 0.1.4) broke
        plain readers; say so instead of reporting an empty dataset."""
        legacy = self._fs.glob(str(self._root / f"{self._partition_by}=*"))
        if legacy:
            raise DatasetError(
                f"{self._root} holds {len(legacy)} partition folder(s) in the old layout "
                f"'{self._partition_by}=YYYY-MM-DD' (e.g. {PurePosixPath(legacy[0]).name}); "
                f"partitions are now 'day=YYYY-MM-DD'. Delete the old folders and re-run the "
                "producing app's pipeline to republish them."
            )

    def _read_file(self, path: str) -> tuple[pa.Table | None, list[str]]:
        """One file's table, or None with the ways it breaks the contract."""
        with self._fs.open(path, "rb") as stream:
            parquet = pq.ParquetFile(stream)
            written = (parquet.schema_arrow.metadata or {}).get(META_CONTRACT)
            check_compatible(written.decode() if written else None, where=path)
            problems = self._physical.problems(parquet) if self._physical else []
            return (None if problems else parquet.read()), problems

    def _aligned(self, tables: list[pa.Table]) -> pa.Table:
        """One table in the contract's order and types. A file lacking an optional column gets
        it as nulls; every other cast is a widening that the physical check has allowed."""
        if self._physical is None:
            return pa.concat_tables(tables, promote_options="permissive")
        target = self._physical.target_schema(
            [name for name in self._physical.columns if any(name in t.schema.names for t in tables)]
        )
        aligned = []
        for table in tables:
            full = table
            for field in target:
                if field.name not in full.schema.names:
                    full = full.append_column(field.name, pa.nulls(len(full), field.type))
            aligned.append(full.select(target.names).cast(target))
        return pa.concat_tables(aligned)

    def _load(self) -> pd.DataFrame:
        files = self._files()
        if self._last_partitions:
            newest = set(self.partitions()[-self._last_partitions :])
            files = [f for f in files if PurePosixPath(f).parent.name.split("=", 1)[1] in newest]
        if not files:
            self._refuse_legacy_layout()
            raise DatasetError(
                f"No published data in {self._root}. Run the producing app's pipeline first "
                f"(see the README: `make run-etl` publishes instances and labels)."
            )
        # Each file is checked on its own before anything is concatenated: concatenation would
        # cast every file to the first one's schema and hide a file of the wrong types.
        tables, refused = [], []
        for path in files:
            table, problems = self._read_file(path)
            if problems:
                name = PurePosixPath(path).relative_to(self._root)
                refused.append(f"- {name}: " + "; ".join(problems))
            else:
                tables.append(table)
        if refused:
            raise ExchangeSchemaError(
                f"{len(refused)} of {len(files)} file(s) in {self._root} do not have the physical "
                f"schema of the {self._physical.name} contract, so nothing was loaded:\n"
                + "\n".join(refused[:20])
                + ("\n..." if len(refused) > 20 else "")
                + "\nRe-publish those partitions with the producing app's pipeline "
                "(e.g. `make run-etl`), or remove them."
            )
        return self._aligned(tables).to_pandas()

    def _exists(self) -> bool:
        return bool(self._files())

    def partitions(self) -> list[str]:
        """Published partition days, e.g. ``['2024-01-01', ...]``."""
        return sorted({PurePosixPath(f).parent.name.split("=", 1)[1] for f in self._files()})

    def file_metadata(self) -> list[dict[str, str]]:
        """The stamp of every published file (contract version, producer, write time)."""
        out = []
        for path in self._files():
            with self._fs.open(path, "rb") as stream:
                meta = pq.read_schema(stream).metadata or {}
            out.append(
                {
                    "path": path,
                    "contract_version": meta.get(META_CONTRACT, b"").decode(),
                    "producer": meta.get(META_PRODUCER, b"").decode(),
                    "written_at": meta.get(META_WRITTEN_AT, b"").decode(),
                }
            )
        return out


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
