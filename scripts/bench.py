"""`make bench`: every performance figure of the template, each as a ratio against a reference
measured in the same run, written to docs/benchmarks.md.

1. logged pipeline model predict vs the same fitted objects called directly (1, 1k, 100k rows);
2. the decision service vs `mlflow models serve` of the same model, and of kedro-mlflow's stock
   KedroPipelineModel, 1-row requests over loopback (p50/p99, req/s; bounded load);
3. `kedro` start-up of each app vs `python -c "import kedro"`;
4. simulator and etl_instances throughput vs a plain DuckDB scan of the same data;
5. contract validation time as a share of each pipeline's wall time;
6. model PR-AUC vs the simulator oracle's Bayes-optimal PR-AUC;
7. the loop's wall time on ~1M payments (simulate -> etl -> train -> score).

Everything runs in a world of its own (``--root``, default data/bench): its own source database,
exchange and MLflow store, each app in its own environment. ``--smoke`` runs the same code on a
small world in a minute or two (``make bench-smoke``, part of ``make test``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import requests

from scripts.demo import oracle_ceiling
from scripts.loop import ROOT, env_bin, loop_steps, run_steps
from scripts.servers import Server, free_port
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.examples import transaction_instance_example
from shared_schemas.exchange import ExchangeParquetDataset
from shared_schemas.ml_to_user import FraudDecision
from shared_schemas.testing import isolated_app, isolated_env

APPS = ("etl_app", "ml_app", "user_app")
PROBES = ROOT / "scripts" / "probes"
LOOP = ("simulate", "etl_instances", "etl_labels", "training", "batch_scoring")
SMOKE_WORLD = {
    "simulate": {"simulate.n_customers": 1500, "simulate.n_merchants": 500},
    "training": {
        "training.model.hist_gradient_boosting.max_iter": 60,
        "evaluation.importance_sample": 2000,
    },
}


# --- helpers -------------------------------------------------------------------------------------
def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def probe(app: str, script: str, *args: object, env: Mapping[str, str]) -> dict[str, Any]:
    """Run a probe in ``app``'s environment; its last output line is JSON."""
    proc = subprocess.run(
        [str(env_bin(ROOT, app, "python")), str(PROBES / script), *map(str, args)],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe {script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def wall(cmd: list[str], cwd: Path, env: Mapping[str, str], repeat: int = 3) -> float:
    """Median wall time of a command (seconds); fails if the command fails."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=dict(env), capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- 7, 4, 5, 6: the loop and what it produced --------------------------------------------------
def run_loop(root: Path, env: Mapping[str, str], smoke: bool) -> dict[str, float]:
    steps = [s for s in loop_steps(SMOKE_WORLD if smoke else None) if s.pipeline in LOOP]
    results = run_steps(steps, root=root, log_dir=root / "logs", env=env)
    return {r.step.pipeline: r.seconds for r in results}


def exchange(root: Path, name: str, partition_by: str = "event_time") -> ExchangeParquetDataset:
    return ExchangeParquetDataset(
        filepath=str(root / "data/exchange" / name), partition_by=partition_by
    )


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def validation_shares(root: Path, steps: dict[str, float]) -> list[dict[str, Any]]:
    """Time of the contract checks each pipeline runs, against its wall time."""
    instances = exchange(root, "instances").load()
    labels = exchange(root, "labels").load()
    decisions = exchange(root, "decisions").load()

    def check(model, frame):
        return best_of(lambda: model.validate(frame, lazy=True))

    t_inst, t_lab, t_dec = (
        check(TransactionInstance, instances),
        check(FraudLabel, labels),
        check(FraudDecision, decisions),
    )
    rows = [
        # the producer checks twice: quarantine split, then the catalog's save validator
        ("etl_instances", "TransactionInstance x2 (quarantine + save)", 2 * t_inst, len(instances)),
        ("etl_labels", "FraudLabel x2 (quarantine + save)", 2 * t_lab, len(labels)),
        ("training", "TransactionInstance + FraudLabel on load", t_inst + t_lab, len(instances)),
        (
            "batch_scoring",
            "TransactionInstance on load + FraudDecision on save",
            t_inst + t_dec,
            len(instances),
        ),
    ]
    return [
        {
            "pipeline": p,
            "checks": what,
            "validation_s": s,
            "pipeline_s": steps[p],
            "share": s / steps[p],
            "rows": n,
        }
        for p, what, s, n in rows
    ]


# --- 1: predict --------------------------------------------------------------------------------
def predict_bench(root: Path, env: Mapping[str, str], sizes: list[int]) -> dict[str, Any]:
    return probe(
        "ml_app",
        "predict.py",
        f"sqlite:///{root / 'mlflow.db'}",
        "models:/fraud-detector/1",
        root / "data/exchange/instances",
        ",".join(map(str, sizes)),
        env=env,
    )


# --- 2: serving --------------------------------------------------------------------------------
def load_test(url: str, body: dict, sequential: int, concurrent: int, workers: int = 4) -> dict:
    """Bounded closed-loop load on loopback: ``sequential`` requests one after another (latency),
    then ``concurrent`` requests from ``workers`` clients (throughput). Stops by itself."""
    session = requests.Session()
    for _ in range(20):
        session.post(f"{url}/invocations", json=body, timeout=10).raise_for_status()
    latencies = []
    for _ in range(sequential):
        started = time.perf_counter()
        session.post(f"{url}/invocations", json=body, timeout=10).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)

    def client(n: int) -> int:
        s = requests.Session()
        for _ in range(n):
            s.post(f"{url}/invocations", json=body, timeout=10).raise_for_status()
        return n

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        done = sum(pool.map(client, [concurrent // workers] * workers))
    elapsed = time.perf_counter() - started
    score = session.post(f"{url}/invocations", json=body, timeout=10).json()["predictions"]
    return {
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "sequential_rps": sequential / (sum(latencies) / 1000),
        "concurrent_rps": done / elapsed,
        "score": score[0]["score"],
    }


def serving_bench(root: Path, env: Mapping[str, str], sequential: int, concurrent: int) -> dict:
    tracking = f"sqlite:///{root / 'mlflow.db'}"
    stock = root / "stock_kpm_model"
    probe("ml_app", "stock_kpm.py", tracking, "models:/fraud-detector/1", stock, env=env)
    user_bin = env_bin(ROOT, "user_app", "python").parent
    serve_env = {**env, "MLFLOW_TRACKING_URI": tracking, "PATH": f"{user_bin}:{env['PATH']}"}
    body = {
        "dataframe_records": json.loads(
            transaction_instance_example().head(1).to_json(orient="records", date_format="iso")
        )
    }

    def mlflow_serve(model: str, port: int) -> list[str]:
        return [
            str(user_bin / "mlflow"),
            "models",
            "serve",
            "-m",
            model,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ]

    servers = {
        "decision service (LeanPipelineModel)": lambda port: (
            [
                str(user_bin / "python"),
                "-m",
                "user_app.online",
                "--params",
                f"online.port={port},online.reload_seconds=0",
            ],
            root / "user_app",
        ),
        "mlflow models serve (LeanPipelineModel)": lambda port: (
            mlflow_serve("models:/fraud-detector/1", port),
            root,
        ),
        "mlflow models serve (stock KedroPipelineModel)": lambda port: (
            mlflow_serve(str(stock), port),
            root,
        ),
    }
    results = {}
    for name, spec in servers.items():
        port = free_port()
        cmd, cwd = spec(port)
        say(f"      serving: {name}")
        url = f"http://127.0.0.1:{port}"
        log = root / f"server-{len(results)}.log"
        with Server(name, cmd, cwd, serve_env, f"{url}/ping", log):
            results[name] = load_test(url, body, sequential, concurrent)
    scores = {round(r["score"], 9) for r in results.values()}
    if len(scores) != 1:
        raise RuntimeError(f"servers disagree on the same row: {scores}")
    return results


# --- 3: start-up -------------------------------------------------------------------------------
def startup_bench(root: Path, env: Mapping[str, str]) -> dict[str, dict[str, float]]:
    tiny = root / "startup"
    for app in APPS:
        isolated_app(ROOT / app, tiny)
    tiny_env = isolated_env(tiny, {"KEDRO_LOGGING_CONFIG": env["KEDRO_LOGGING_CONFIG"]})
    out = {}
    for app in APPS:
        python, kedro = env_bin(ROOT, app, "python"), env_bin(ROOT, app, "kedro")
        out[app] = {
            "import_kedro_s": wall([str(python), "-c", "import kedro"], tiny / app, tiny_env),
            "registry_list_s": wall([str(kedro), "registry", "list"], tiny / app, tiny_env),
        }
    out["etl_app"]["tiny_run_s"] = wall(
        [
            str(env_bin(ROOT, "etl_app", "kedro")),
            "run",
            "--pipelines",
            "simulate",
            "--params",
            "simulate.n_customers=100,simulate.n_merchants=200,simulate.days=7",
        ],
        tiny / "etl_app",
        tiny_env,
    )
    return out


# --- report ------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def render(r: dict[str, Any]) -> str:
    p = r["predict"]["sizes"]
    largest = max(p, key=int)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` ({r['mode']}) on {r['when']}, commit `{r['commit']}`, "
        f"{r['machine']}. Every ratio compares two figures measured in the same run on the same "
        "machine; absolute times move with the machine's load, ratios much less. Regenerate with "
        "`make bench`; `make bench-smoke` (small sizes) runs inside `make test`.",
        "",
        "## Goals",
        "",
        "| Goal | Measured | Verdict |",
        "| --- | --- | --- |",
    ]
    ratio_big = p[largest]["lean_ms"] / p[largest]["direct_ms"]
    one = p["1"]["lean_ms"]
    s = r["serving"]
    ours = s["decision service (LeanPipelineModel)"]
    stock = s["mlflow models serve (stock KedroPipelineModel)"]
    tput = ours["concurrent_rps"] / stock["concurrent_rps"]
    etl_start = r["startup"]["etl_app"]["tiny_run_s"]
    worst_share = max(v["share"] for v in r["validation"])
    loop_s = sum(r["loop"].values())
    ceiling = r["ceiling"]["ratio"]
    goals = [
        (
            f"pipeline model <= 1.3x direct at {int(largest):,} rows",
            f"{ratio_big:.2f}x",
            ratio_big <= 1.3,
        ),
        ("pipeline model <= 2 ms for 1 row", f"{one:.1f} ms", one <= 2),
        ("online p50 <= 10 ms", f"{ours['p50_ms']:.1f} ms", ours["p50_ms"] <= 10),
        ("online p99 <= 30 ms", f"{ours['p99_ms']:.1f} ms", ours["p99_ms"] <= 30),
        (
            ">= 3x the throughput of stock KPM under `mlflow models serve`",
            f"{tput:.2f}x",
            tput >= 3,
        ),
        ("etl_app start-up (tiny `kedro run`) <= 2 s", f"{etl_start:.2f} s", etl_start <= 2),
        (
            "contract validation <= 10% of pipeline time",
            f"{worst_share:.1%} (worst pipeline)",
            worst_share <= 0.10,
        ),
        ("1M-payment loop <= 3 min", f"{loop_s:.0f} s ({r['payments']:,} payments)", loop_s <= 180),
        ("PR-AUC >= 0.95 x Bayes-optimal", f"{ceiling:.1%}", ceiling >= 0.95),
    ]
    lines += [f"| {g} | {m} | {verdict(ok)} |" for g, m, ok in goals]
    lines += ["", "Where a goal is missed, see *Why* below.", ""]

    lines += [
        "## 1. Pipeline model predict vs the same fitted objects called directly",
        "",
        "`direct` = `classifier.predict_proba(preprocessor.transform(rows))` with the model's own "
        "artifacts; `lean` = the logged `LeanPipelineModel.predict` (contract check + the three "
        "inference nodes); `lean via pyfunc` adds MLflow's signature enforcement; `stock` = "
        "kedro-mlflow's `KedroPipelineModel.predict` on the same loaded model (catalog deep copy, "
        "runner, hooks, logging).",
        "",
        "| rows | direct | lean | lean via pyfunc | stock KPM | lean / direct | stock / direct |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, v in p.items():
        lines.append(
            f"| {int(n):,} | {v['direct_ms']:.1f} ms | {v['lean_ms']:.1f} ms | "
            f"{v['lean_pyfunc_ms']:.1f} ms | {v['stock_kpm_ms']:.1f} ms | "
            f"{v['lean_ms'] / v['direct_ms']:.2f}x | {v['stock_kpm_ms'] / v['direct_ms']:.2f}x |"
        )
    lines += [
        "",
        "## 2. Online: 1-row requests over loopback",
        "",
        f"{r['requests']['sequential']} sequential requests (latency), then "
        f"{r['requests']['concurrent']} from 4 concurrent clients (throughput), after 20 warm-up "
        "requests; all three servers answer the same score for the same row.",
        "",
        "| server | p50 | p99 | req/s (1 client) | req/s (4 clients) | throughput vs stock |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, v in s.items():
        lines.append(
            f"| {name} | {v['p50_ms']:.1f} ms | {v['p99_ms']:.1f} ms | "
            f"{v['sequential_rps']:.0f} | {v['concurrent_rps']:.0f} | "
            f"{v['concurrent_rps'] / stock['concurrent_rps']:.2f}x |"
        )
    lines += [
        "",
        "## 3. Start-up",
        "",
        "| app | `python -c 'import kedro'` | `kedro registry list` | ratio | tiny `kedro run` |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for app, v in r["startup"].items():
        tiny_run = f"{v['tiny_run_s']:.2f} s" if "tiny_run_s" in v else "-"
        lines.append(
            f"| {app} | {v['import_kedro_s']:.2f} s | {v['registry_list_s']:.2f} s | "
            f"{v['registry_list_s'] / v['import_kedro_s']:.1f}x | {tiny_run} |"
        )
    duck = r["duckdb_scan"]
    lines += [
        "",
        "## 4. Throughput on the simulated payments",
        "",
        "Reference: a plain DuckDB scan (`count`, `sum`, `avg`) of the published instances.",
        "",
        "| stage | rows | wall time | rows/s | DuckDB scan rows/s | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    duck_rps = duck["rows"] / duck["seconds"]
    for stage in ("simulate", "etl_instances"):
        secs = r["loop"][stage]
        rps = r["payments"] / secs
        lines.append(
            f"| `{stage}` (whole `kedro run`) | {r['payments']:,} | {secs:.1f} s | {rps:,.0f} | "
            f"{duck_rps:,.0f} | {duck_rps / rps:,.0f}x slower |"
        )
    lines += [
        "",
        "## 5. Contract validation as a share of pipeline time",
        "",
        "| pipeline | checks | rows | validation | pipeline | share |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for v in r["validation"]:
        lines.append(
            f"| `{v['pipeline']}` | {v['checks']} | {v['rows']:,} | {v['validation_s']:.2f} s | "
            f"{v['pipeline_s']:.1f} s | {v['share']:.1%} |"
        )
    c = r["ceiling"]
    lines += [
        "",
        "## 6. Model quality vs the oracle",
        "",
        f"Validation rows: model PR-AUC **{c['model_pr_auc']:.4f}**, Bayes-optimal PR-AUC (the "
        f"simulator's true fraud probabilities) **{c['bayes_optimal_pr_auc']:.4f}**: "
        f"**{c['ratio']:.1%}** of the ceiling.",
        "",
        "## 7. The loop",
        "",
        "| step | wall time |",
        "| --- | ---: |",
    ]
    lines += [f"| `{k}` | {v:.1f} s |" for k, v in r["loop"].items()]
    lines += [f"| **total** | **{loop_s:.1f} s** |", "", WHY]
    return "\n".join(lines) + "\n"


WHY = """## Why some goals are missed

* **1 row in <= 2 ms.** The pipeline model's own overhead is small (see *lean / direct*); the
  fitted objects themselves take ~10 ms for one row on this machine: scikit-learn's
  `ColumnTransformer` spends ~7 ms on input checks and per-column pandas work for a one-row
  frame, and the 300-tree `HistGradientBoostingClassifier` ~2.5 ms (one Python call per tree).
  Meeting 2 ms needs a lighter preprocessor for the tree family (trees need neither imputation,
  log scaling nor one-hot encoding) or a compiled model; both change the model, not the serving
  path.
* **Online p50 <= 10 ms.** The same ~10 ms of model work, plus the contract check (~1 ms, done by
  the service and again inside the model so the model stays safe on its own), MLflow's signature
  enforcement (~2 ms) and HTTP/JSON.
* **3x the stock throughput.** The stock `KedroPipelineModel` pays ~5 ms of catalog deep copy,
  runner and logging per call on top of the same ~10 ms of model work, so removing all overhead
  cannot give more than ~1.5-3x; the gap grows with cheaper models.
* **PR-AUC >= 95% of Bayes-optimal.** The model sees point-in-time features, not the simulator's
  latent attack state; a sweep of boosting settings moved the share only within noise.
"""


# --- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes (part of make test)")
    parser.add_argument("--root", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for app in APPS:
        isolated_app(ROOT / app, root)
    env = isolated_env(
        root, {"KEDRO_LOGGING_CONFIG": str(ROOT / "conf/logging.yml"), "UV_COMPILE_BYTECODE": "1"}
    )
    started = time.perf_counter()
    say(">> 7. the loop (simulate -> etl -> train -> score)")
    loop = run_loop(root, env, args.smoke)
    payments = len(exchange(root, "instances").load())
    say(">> 4. DuckDB scan reference")
    duck = probe("etl_app", "duckdb_scan.py", root / "data/exchange/instances", env=env)
    say(">> 5. contract validation share")
    validation = validation_shares(root, loop)
    say(">> 6. PR-AUC vs the oracle")
    ceiling = oracle_ceiling(root, root / "source_system.db")  # where isolated_env puts it
    say(">> 1. pipeline model predict")
    sizes = [1, 1_000] if args.smoke else [1, 1_000, 100_000]
    predict = predict_bench(root, env, sizes)
    say(">> 2. online serving")
    requests_ = (
        {"sequential": 40, "concurrent": 40}
        if args.smoke
        else {"sequential": 500, "concurrent": 400}
    )
    serving = serving_bench(root, env, **requests_)
    say(">> 3. start-up")
    startup = startup_bench(root, env)
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "unknown"
    )
    results = {
        "mode": "smoke" if args.smoke else "full",
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "payments": payments,
        "loop": loop,
        "duckdb_scan": duck,
        "validation": validation,
        "ceiling": ceiling,
        "predict": predict,
        "requests": requests_,
        "serving": serving,
        "startup": startup,
        "bench_seconds": time.perf_counter() - started,
    }
    (root / "results.json").write_text(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results))
    say(f">> wrote {args.out} ({results['bench_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
