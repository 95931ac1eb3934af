"""A plain DuckDB scan of the published instances: the floor for touching every row
(run in etl_app's env). usage: duckdb_scan.py <instances_dir>"""

from __future__ import annotations

import json
import sys
import time

import duckdb
from deltalake import DeltaTable


def main() -> None:
    files = DeltaTable(sys.argv[1]).file_uris()  # the table's current files (a Delta table)
    query = "SELECT count(*), sum(amount), avg(tx_count_24h) FROM read_parquet($files)"
    duckdb.sql(query, params={"files": files}).fetchall()  # warm the file cache
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        rows = duckdb.sql(query, params={"files": files}).fetchall()[0][0]
        best = min(best, time.perf_counter() - started)
    sys.stdout.write(json.dumps({"rows": rows, "seconds": best}) + "\n")


if __name__ == "__main__":
    main()
