"""A plain DuckDB scan of the published instances: the floor for touching every row
(run in etl_app's env). usage: duckdb_scan.py <instances_dir>"""

from __future__ import annotations

import json
import sys
import time

import duckdb


def main() -> None:
    pattern = f"{sys.argv[1]}/*/*.parquet"
    query = f"SELECT count(*), sum(amount), avg(tx_count_24h) FROM read_parquet('{pattern}')"
    duckdb.sql(query).fetchall()  # warm the file cache
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        rows = duckdb.sql(query).fetchall()[0][0]
        best = min(best, time.perf_counter() - started)
    sys.stdout.write(json.dumps({"rows": rows, "seconds": best}) + "\n")


if __name__ == "__main__":
    main()
