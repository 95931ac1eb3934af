"""`make bench`: every performance figure of the template, each as a ratio against a reference
measured in the same run, written to docs/benchmarks.md.

1. logged pipeline model predict (compiled: numpy + treelite) vs the fitted scikit-learn objects
   called directly (1, 1k, 100k rows);
2. the decision service vs `mlflow models serve` of the same model, and of kedro-mlflow's stock
   KedroPipelineModel, 1-row requests over loopback (p50/p99, req/s; bounded load); the
   decision service again with a CPU-bound process running beside it;
3. `kedro` start-up of each app vs etl_app's (`kedro registry list`, a tiny `kedro run`);
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
import sqlite3
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

from tooling.conf import catalog_entry, exchange_dataset, shared_settings
from tooling.loop.demo import oracle_ceiling
from tooling.loop.steps import ROOT, env_bin, loop_steps, run_steps
from tooling.processes import Server, free_port
from shared_runtime.exchange import ExchangeParquetDataset
from shared_runtime.testing import isolated_app, isolated_env
from shared_schemas.etl_to_ml import FraudLabel, TransactionInstance
from shared_schemas.examples import transaction_instance_example
from shared_schemas.ml_to_user import FraudDecision

APPS = ("etl_app", "ml_app", "user_app")
PROBES = Path(__file__).parent / "probes"
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


PRODUCERS = {"instances": "etl_app", "labels": "etl_app", "decisions": "user_app"}


def exchange(root: Path, name: str) -> ExchangeParquetDataset:
    """An exchange dataset of the world at ``root``, as its producer's catalog declares it."""
    return exchange_dataset(root, PRODUCERS[name], name, isolated_env(root))


def exchange_folder(root: Path, name: str) -> str:
    """Where that dataset lives (the probes read its Delta table with DuckDB / the dataset)."""
    return catalog_entry(root, PRODUCERS[name], name, isolated_env(root))["filepath"]


def first_version(root: Path) -> tuple[str, str]:
    """(tracking URI, model URI of the first registered version) of the world at ``root``."""
    settings = shared_settings(root, isolated_env(root))
    return settings["mlflow_tracking_uri"], f"models:/{settings['registered_model_name']}/1"


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
    tracking, model = first_version(root)
    instances = exchange_folder(root, "instances")
    return probe(
        "ml_app", "predict.py", tracking, model, instances, ",".join(map(str, sizes)), env=env
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


class CpuHog:
    """A CPU-bound process beside the server (a busy loop), stopped on exit."""

    def __enter__(self) -> CpuHog:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


OURS = "decision service (compiled model, fast path)"
STOCK = "mlflow models serve (stock KedroPipelineModel)"


def serving_bench(root: Path, env: Mapping[str, str], sequential: int, concurrent: int) -> dict:
    tracking, model = first_version(root)
    stock = root / "stock_kpm_model"
    probe("ml_app", "stock_kpm.py", tracking, model, stock, env=env)
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
        OURS: lambda port: (
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
            mlflow_serve(model, port),
            root,
        ),
        STOCK: lambda port: (
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
            if name == OURS:
                say("      serving: the same, with a CPU-bound process beside it")
                with CpuHog():
                    loaded = load_test(url, body, sequential, concurrent)
    scores = {round(r["score"], 9) for r in (*results.values(), loaded)}
    if len(scores) != 1:
        raise RuntimeError(f"servers disagree on the same row: {scores}")
    return {"servers": results, "under_load": loaded}


# --- 3: start-up -------------------------------------------------------------------------------
def startup_bench(root: Path, env: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Each app's ``kedro registry list`` and a tiny ``kedro run``: etl_app simulates a week of
    a small world; ml_app scores 50 instances with the compiled model of the bench's training."""
    tiny = root / "startup"
    for app in APPS:
        isolated_app(ROOT / app, tiny)
    tiny_env = isolated_env(tiny, {"KEDRO_LOGGING_CONFIG": env["KEDRO_LOGGING_CONFIG"]})
    exchange(tiny, "instances").save(exchange(root, "instances").load().head(50))
    models = tiny / "ml_app/data/06_models"
    models.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "ml_app/data/06_models/compiled_model.pkl", models)
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
    ml_run = [str(env_bin(ROOT, "ml_app", "kedro")), "run", "--pipelines", "inference"]
    wall(ml_run, tiny / "ml_app", tiny_env, repeat=1)  # first run creates the MLflow store
    out["ml_app"]["tiny_run_s"] = wall(ml_run, tiny / "ml_app", tiny_env)
    return out


# --- 8: real-time authorization ---------------------------------------------------------------
def latest_payments(root: Path, n: int) -> list[dict[str, Any]]:
    """The source system's last ``n`` payments, as a gateway sends them (PaymentRequest)."""
    with sqlite3.connect(root / "source_system.db") as con:  # isolated_env's source
        rows = con.execute(
            """SELECT t.transaction_id, t.card_id, c.customer_id, t.merchant_id, t.event_time,
                      t.amount, m.category, m.country
               FROM transactions t JOIN cards c ON c.card_id = t.card_id
               JOIN merchants m ON m.merchant_id = t.merchant_id
               ORDER BY t.transaction_id DESC LIMIT ?""",
            (n,),
        ).fetchall()
    keys = ("transaction_id", "card_id", "customer_id", "merchant_id", "event_time", "amount")
    return [
        {**dict(zip(keys, r[:6], strict=True)), "merchant_category": r[6], "merchant_country": r[7]}
        for r in rows
    ]


def sequential_ms(session: requests.Session, url: str, bodies: list[dict]) -> list[float]:
    """Latency of each request, one after another."""
    out = []
    for body in bodies:
        started = time.perf_counter()
        session.post(url, json=body, timeout=30).raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
    return out


def authorize_bench(root: Path, env: Mapping[str, str], smoke: bool) -> dict[str, Any]:
    """`make live`'s path on this world: the live simulator at a sustained rate against POST
    /authorize (end to end: payment -> features -> model -> decision), then the same payments one
    at a time through the featurization service alone and through /authorize, then the batch's
    reconciliation (skew). Last in the suite: it adds live payments to the world."""
    from tooling.loop.live import LiveRun, drive, reconcile, services  # noqa: PLC0415

    settings = LiveRun(
        rate=20 if smoke else 300,
        seconds=5 if smoke else 20,
        clients=8,
        seed=3,
        world=SMOKE_WORLD["simulate"] if smoke else {},
        features_timeout_seconds=1.0,
        request_timeout_seconds=2.0,
    )
    featurizer, decider = services(root, env, settings.features_timeout_seconds)
    with featurizer, decider:
        features_url = featurizer.ready_url.removesuffix("/ping")
        authorize_url = decider.ready_url.removesuffix("/ping") + "/authorize"
        live = drive(root, env, authorize_url, settings)
        payments = latest_payments(root, 20 if smoke else 200)
        session = requests.Session()
        featurize = sequential_ms(
            session, f"{features_url}/features", [{"payments": [p]} for p in payments]
        )
        authorize = sequential_ms(session, authorize_url, payments)
    return {
        "rate": settings.rate,
        "seconds": settings.seconds,
        "clients": settings.clients,
        "live": live,
        "sequential": {
            "payments": len(payments),
            "featurize_p50_ms": float(np.percentile(featurize, 50)),
            "featurize_p99_ms": float(np.percentile(featurize, 99)),
            "authorize_p50_ms": float(np.percentile(authorize, 50)),
            "authorize_p99_ms": float(np.percentile(authorize, 99)),
        },
        "reconciliation": reconcile(root, env, echo=False),
    }


# --- report ------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def goals(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(key, goal, measured, met) for every goal of the template, from one run's results."""
    p = r["predict"]["sizes"]
    largest = max(p, key=int)
    one = p["1"]
    ratio_big = p[largest]["lean_ms"] / p[largest]["direct_ms"]
    worst_diff = max(v["max_abs_diff"] for v in p.values())
    s = r["serving"]["servers"]
    ours, stock, loaded = s[OURS], s[STOCK], r["serving"]["under_load"]
    tput = ours["concurrent_rps"] / stock["concurrent_rps"]
    hog = loaded["p99_ms"] / ours["p99_ms"]
    st = r["startup"]
    etl_list, etl_run = st["etl_app"]["registry_list_s"], st["etl_app"]["tiny_run_s"]
    worst_share = max(v["share"] for v in r["validation"])
    loop_s = sum(r["loop"].values())
    ceiling = r["ceiling"]["ratio"]
    out = [
        (
            "predict_1",
            "pipeline model predict, 1 row, in process <= 0.3 ms",
            f"{one['lean_ms']:.3f} ms",
            one["lean_ms"] <= 0.3,
        ),
        (
            "pyfunc_1",
            "... through `mlflow.pyfunc` <= 2 ms",
            f"{one['lean_pyfunc_ms']:.2f} ms",
            one["lean_pyfunc_ms"] <= 2,
        ),
        (
            "predict_big",
            f"pipeline model predict, {int(largest):,} rows <= 0.5x direct scikit-learn",
            f"{ratio_big:.2f}x",
            ratio_big <= 0.5,
        ),
        (
            "exact",
            "compiled scores == scikit-learn's (max abs difference <= 1e-9)",
            f"{worst_diff:.1e}",
            worst_diff <= 1e-9,
        ),
        ("p50", "online 1-row p50 <= 2 ms", f"{ours['p50_ms']:.2f} ms", ours["p50_ms"] <= 2),
        ("p99", "online 1-row p99 <= 6 ms", f"{ours['p99_ms']:.2f} ms", ours["p99_ms"] <= 6),
        (
            "throughput",
            ">= 10x the throughput of stock KPM under `mlflow models serve` (4 clients)",
            f"{tput:.1f}x",
            tput >= 10,
        ),
        (
            "hog",
            "online p99 with a CPU-bound process beside it <= 3x its quiet p99",
            f"{hog:.2f}x ({loaded['p99_ms']:.2f} ms)",
            hog <= 3,
        ),
    ]
    for app in ("ml_app", "user_app"):
        ratio = st[app]["registry_list_s"] / etl_list
        out.append(
            (
                f"start_{app}",
                f"{app} `kedro registry list` <= 1.3x etl_app's",
                f"{ratio:.2f}x ({st[app]['registry_list_s']:.2f} s)",
                ratio <= 1.3,
            )
        )
    ml_run = st["ml_app"]["tiny_run_s"] / etl_run
    out += [
        (
            "run_ml_app",
            "ml_app tiny `kedro run` <= 1.3x etl_app's",
            f"{ml_run:.2f}x ({st['ml_app']['tiny_run_s']:.2f} s)",
            ml_run <= 1.3,
        ),
        (
            "etl_start",
            "etl_app start-up (tiny `kedro run`) <= 2 s",
            f"{etl_run:.2f} s",
            etl_run <= 2,
        ),
        (
            "validation",
            "contract validation <= 10% of pipeline time",
            f"{worst_share:.1%} (worst pipeline)",
            worst_share <= 0.10,
        ),
        (
            "loop",
            "1M-payment loop <= 3 min",
            f"{loop_s:.0f} s ({r['payments']:,} payments)",
            loop_s <= 180,
        ),
        ("ceiling", "PR-AUC >= 0.95 x Bayes-optimal", f"{ceiling:.1%}", ceiling >= 0.95),
    ]
    a = r["authorize"]
    live, seq, rec = a["live"], a["sequential"], a["reconciliation"]
    lat = live["latency_ms"]
    answered = f"{live['answered']:,}/{live['payments']:,} answered, {live['achieved_rate']}/s"
    fallbacks = sum(live["fallbacks"].values())
    skew = rec["features"]["differ"] + rec["decisions"]["differ"]
    out += [
        (
            "authorize_p50",
            f"`/authorize` end to end at {a['rate']:.0f} payments/s: p50 <= 5 ms",
            f"{lat.get('p50', float('nan')):.1f} ms ({answered}, {fallbacks:,} fallbacks)",
            lat.get("p50", 1e9) <= 5 and live["answered"] == live["payments"],
        ),
        (
            "authorize_p99",
            "... p99 <= 15 ms",
            f"{lat.get('p99', float('nan')):.1f} ms",
            lat.get("p99", 1e9) <= 15 and live["answered"] == live["payments"],
        ),
        (
            "featurize",
            "featurization alone (1 payment per request) p50 <= 3 ms",
            f"{seq['featurize_p50_ms']:.1f} ms "
            f"({seq['featurize_p50_ms'] / seq['authorize_p50_ms']:.0%} of `/authorize`'s)",
            seq["featurize_p50_ms"] <= 3,
        ),
        (
            "skew",
            "zero skew: online features == batch bit for bit, same decisions",
            f"{rec['features']['differ']} of {rec['features']['compared']:,} features rows, "
            f"{rec['decisions']['differ']} of {rec['decisions']['compared']:,} decisions differ",
            skew == 0 and rec["features"]["compared"] > 0,
        ),
    ]
    return out


def _load(r: dict[str, Any]) -> str:
    load = r.get("load_average")
    return (
        f", load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)" if load else ""
    )


def render(r: dict[str, Any]) -> str:
    p = r["predict"]["sizes"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` ({r['mode']}) on {r['when']}, commit `{r['commit']}`, "
        f"{r['machine']}{_load(r)}. Every ratio compares two figures measured in the same run "
        "on the same machine; absolute times move with the machine's load, ratios much less. "
        "Regenerate with `make bench`; `make bench-smoke` (small sizes) runs inside `make test`.",
        "",
        "## Goals",
        "",
        "| Goal | Measured | Verdict |",
        "| --- | --- | --- |",
    ]
    results = goals(r)
    lines += [f"| {g} | {m} | {verdict(ok)} |" for _, g, m, ok in results]
    lines += ["", "Where a goal is missed, see *Why* below.", ""]
    lines += [
        "## 1. Pipeline model predict vs the same fitted objects called directly",
        "",
        "`direct` = `classifier.predict_proba(preprocessor.transform(rows))`: scikit-learn on the "
        "fitted objects the served model was compiled from (default threads); `lean` = the "
        "logged pipeline model's `predict` (contract check + the compiled model, "
        f"`{r['predict']['compiled_kind']}`); `fast` = its `predict_validated`, what the decision "
        "service calls after validating the request itself; `pyfunc` = `lean` through "
        "`mlflow.pyfunc` (adds MLflow's signature enforcement); `stock` = kedro-mlflow's "
        "`KedroPipelineModel.predict` on the same loaded model (catalog deep copy, runner, hooks, "
        "logging); `max diff` = largest |lean - direct| score.",
        "",
        "| rows | direct | lean | fast | pyfunc | stock KPM | lean / direct | max diff |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, v in p.items():
        lines.append(
            f"| {int(n):,} | {v['direct_ms']:.3f} ms | {v['lean_ms']:.3f} ms | "
            f"{v['fast_ms']:.3f} ms | {v['lean_pyfunc_ms']:.3f} ms | {v['stock_kpm_ms']:.3f} ms | "
            f"{v['lean_ms'] / v['direct_ms']:.3f}x | {v['max_abs_diff']:.1e} |"
        )
    parts = r["predict"]["parts"]
    lines += [
        "",
        f"One row, by part: contract check {parts['validate_ms']:.3f} ms, compiled features "
        f"{parts['features_ms']:.3f} ms, compiled model (features + trees) "
        f"{parts['compiled_ms']:.3f} ms; scikit-learn's `ColumnTransformer.transform` alone "
        f"takes {parts['sklearn_transform_ms']:.3f} ms.",
        "",
        "## 2. Online: 1-row requests over loopback",
        "",
        f"{r['requests']['sequential']} sequential requests (latency), then "
        f"{r['requests']['concurrent']} from 4 concurrent clients (throughput), after 20 warm-up "
        "requests; all servers answer the same score for the same row. The last row is the "
        "decision service again with a CPU-bound process (a busy loop) running beside it.",
        "",
        "| server | p50 | p99 | req/s (1 client) | req/s (4 clients) | throughput vs stock |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    s = r["serving"]["servers"]
    rows = [*s.items(), (f"{OURS}, CPU hog beside it", r["serving"]["under_load"])]
    for name, v in rows:
        lines.append(
            f"| {name} | {v['p50_ms']:.2f} ms | {v['p99_ms']:.2f} ms | "
            f"{v['sequential_rps']:.0f} | {v['concurrent_rps']:.0f} | "
            f"{v['concurrent_rps'] / s[STOCK]['concurrent_rps']:.2f}x |"
        )
    st = r["startup"]
    lines += [
        "",
        "## 3. Start-up",
        "",
        "Tiny `kedro run`: etl_app simulates a week of a 100-customer world; ml_app scores 50 "
        "instances with the compiled model (`--pipelines inference`).",
        "",
        "| app | `python -c 'import kedro'` | `kedro registry list` | vs etl_app "
        "| tiny `kedro run` | vs etl_app |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for app, v in st.items():
        run = (
            f"{v['tiny_run_s']:.2f} s | {v['tiny_run_s'] / st['etl_app']['tiny_run_s']:.2f}x"
            if "tiny_run_s" in v
            else "- | -"
        )
        lines.append(
            f"| {app} | {v['import_kedro_s']:.2f} s | {v['registry_list_s']:.2f} s | "
            f"{v['registry_list_s'] / st['etl_app']['registry_list_s']:.2f}x | {run} |"
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
    loop_s = sum(r["loop"].values())
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
    lines += [f"| **total** | **{loop_s:.1f} s** |", ""]
    lines += authorize_section(r["authorize"])
    missed = [key for key, _, _, ok in results if not ok]
    lines += ["## Why some goals are missed", ""]
    explained = list(dict.fromkeys(WHY[key] for key in missed if key in WHY))  # once each
    lines += explained or ["Every goal is met in this run."]
    return "\n".join(lines) + "\n"


def authorize_section(a: dict[str, Any]) -> list[str]:
    live, seq, rec = a["live"], a["sequential"], a["reconciliation"]
    lat = live["latency_ms"]
    return [
        "## 8. Real-time authorization",
        "",
        f"`make live`'s path on this world: etl_app's live mode records payments in the source "
        f"database at {a['rate']:.0f}/s for {a['seconds']:.0f} s ({a['clients']} concurrent "
        "requests, attack bursts included) and sends each to user_app's `POST /authorize`, which "
        "gets its features from etl_app's featurization service (1 s budget, then the fallback) "
        "and decides. Then the last payments one at a time, through the featurization service "
        "alone and through `/authorize`; then etl_app's batch and user_app's batch scoring of the "
        "same period, compared payment by payment.",
        "",
        "| | payments | answered | fallbacks | not answered | p50 | p95 | p99 | rate |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| live, end to end | {live['payments']:,} | {live['answered']:,} | "
        f"{sum(live['fallbacks'].values()):,} | {live['errors']:,} | {lat.get('p50', 0):.1f} ms | "
        f"{lat.get('p95', 0):.1f} ms | {lat.get('p99', 0):.1f} ms | {live['achieved_rate']}/s |",
        f"| one at a time: featurization | {seq['payments']} | | | | "
        f"{seq['featurize_p50_ms']:.1f} ms | | {seq['featurize_p99_ms']:.1f} ms | |",
        f"| one at a time: `/authorize` | {seq['payments']} | | | | "
        f"{seq['authorize_p50_ms']:.1f} ms | | {seq['authorize_p99_ms']:.1f} ms | |",
        "",
        f"Decisions: {live['decisions']}; fallbacks: {live['fallbacks'] or 'none'}; not answered: "
        f"{live['errors_by_kind'] or 'none'}.",
        "",
        f"Skew over {rec['window'][0]} .. {rec['window'][1]}: {rec['features']['differ']} of "
        f"{rec['features']['compared']:,} payments' features differ from the batch's (bit for "
        f"bit), {rec['decisions']['differ']} of {rec['decisions']['compared']:,} decisions differ "
        f"(largest score difference {rec['decisions']['max_score_difference']:.1e}).",
        "",
    ]


# Where the time goes when a goal is missed (profiled with cProfile / -X importtime, issue 23).
LOAD = (
    "This machine is shared: when several jobs run beside the benchmark (load average above the "
    "core count), every absolute time here grows 2-10x; compare ratios."
)
WHY = {
    "predict_1": (
        "* **1 row in process.** The compiled model itself takes ~0.1 ms (see *by part*); the "
        "rest of `predict` is the model's own contract check (`shared_runtime.fast.FastContract`: "
        "one object block and one null mask for the built-in checks, the two row rules called "
        "directly; what is left is pandas' fixed cost per call: `DataFrame.dtypes`, "
        "`to_numpy`, a Series per column a row rule reads) and building the output frame. The "
        "service skips that check (it validated the request already): `predict_validated` "
        "(*fast*) is the figure that serves. What would close it: checking a record (a dict of "
        "scalars) rather than a one-row DataFrame, and treelite's GTIL without its per-call "
        "set-up (a config parsed from JSON, several ctypes queries)."
    ),
    "predict_big": (
        "* **Large batches.** treelite's GTIL is a reference interpreter, slower per row than "
        "scikit-learn's own compiled tree predictor (100k rows x 300 trees on a quiet machine: "
        "GTIL 2.8 s on one thread, 1.8 s on two; `predict_proba` 0.7 s), so above "
        "`gtil_max_rows` the compiled model runs scikit-learn's predictor on the compiled numpy "
        "features. The preprocessing was never the large-batch cost (`ColumnTransformer` is "
        "vectorised at that size), so both sides spend their time in the same tree predictor and "
        "the ratio stays near 1. What would close it: compiled tree code (treelite's code "
        "generator `tl2cgen` builds a shared library with a C compiler at training time; typically "
        "several times faster than an interpreter) or a faster batch runtime."
    ),
    "p50": (
        "* **Online p50/p99.** The model call is ~0.2 ms of a request (*fast*, section 1); the "
        "rest is the HTTP round trip through FastAPI/uvicorn and the `requests` client (both "
        "Python), JSON parsing into a one-row DataFrame, the contract check (about half of it "
        "coercing the ISO `event_time` string: pandera calls `pd.to_datetime`, which guesses the "
        "format on every call), the prediction log and the decision sink. "
        + LOAD
        + " What would close it: a leaner request path (parse the MLflow JSON straight into "
        "column arrays, `event_time` parsed with one known ISO format), and a client that is "
        "not Python."
    ),
    "throughput": (
        "* **10x the stock throughput.** The stock `KedroPipelineModel` under `mlflow models "
        "serve` pays ~14 ms per call (catalog deep copy, runner, logging) + MLflow's schema "
        "enforcement; ours ~0.2 ms of model work, so what is left on both sides is the HTTP "
        "server and JSON handling, which cap the ratio: with 4 Python clients on 2 cores, the "
        "clients themselves take a large share of the CPU."
    ),
    "hog": (
        "* **Tail with a CPU hog.** The service starts no threads per call (GTIL on one thread, "
        "OpenMP/BLAS pools limited to 1), so the hog only takes its share of the two cores, "
        "shared with the benchmark's clients; the scheduler's time slices set the tail."
    ),
    "start_ml_app": (
        "* **`kedro registry list` of ml_app / user_app.** Registering the pipelines imports no "
        "MLflow, scikit-learn, matplotlib, scipy or treelite any more (a test per app checks it), "
        "but Kedro loads every installed plugin's CLI commands at start, and kedro-mlflow "
        "2.0.3's `kedro_mlflow/framework/cli/cli.py` imports `mlflow` at module level (~1-1.5 s, "
        "`python -X importtime`): every `kedro` command of an app with kedro-mlflow installed "
        "pays it. What would close it: kedro-mlflow deferring that import into its commands, as "
        "kedro-viz did (kedro-org/kedro-viz#1920)."
    ),
    "run_ml_app": (
        "* **A tiny `kedro run` of ml_app.** The same MLflow import (kedro-mlflow's CLI plugin, "
        "then its hook, which opens an MLflow run and logs parameters for every `kedro run`) "
        "plus unpickling the compiled model (scikit-learn and treelite imports)."
    ),
    "etl_start": ("* **etl_app start-up, the loop.** " + LOAD),
    "ceiling": (
        "* **PR-AUC >= 95% of Bayes-optimal.** The model sees point-in-time features, not the "
        "simulator's latent attack state; a sweep of boosting settings moved the share only "
        "within noise."
    ),
}
WHY["featurize"] = (
    "* **Featurization.** The featurization service runs the batch's own screening and feature "
    "SQL (DuckDB) over the card's and the merchant's history read from the source database: "
    "about half of a request is DuckDB planning and running the window query, a third the "
    "screening, the rest the indexed lookups (docs/architecture.md, *The online path*). One "
    "process, one DuckDB connection: concurrent requests queue, so at a sustained rate above its "
    "throughput the live run's latency is queueing and its payments get the fallback. What would "
    "close it: one feature definition compiled both to the batch SQL and to an incremental "
    "per-card / per-merchant state evaluated in microseconds, with screening compiled per "
    "record, kept equal by the same skew test."
)
WHY["authorize_p50"] = WHY["authorize_p99"] = WHY["featurize"]
WHY["p99"] = WHY["p50"]
WHY["loop"] = WHY["etl_start"]
WHY["start_user_app"] = WHY["start_ml_app"]


# --- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes (part of make test)")
    parser.add_argument("--root", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--render", type=Path, help="only re-render --out from a results.json of an earlier run"
    )
    args = parser.parse_args(argv)
    if args.render:
        args.out.write_text(render(json.loads(args.render.read_text())))
        return 0
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
    duck = probe("etl_app", "duckdb_scan.py", exchange_folder(root, "instances"), env=env)
    say(">> 5. contract validation share")
    validation = validation_shares(root, loop)
    say(">> 6. PR-AUC vs the oracle")
    ceiling = oracle_ceiling(root, f"sqlite:///{root / 'source_system.db'}")  # isolated_env's
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
    say(">> 8. real-time authorization (live payments -> /authorize), then skew")
    authorize = authorize_bench(root, env, args.smoke)
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
        "load_average": os.getloadavg(),  # 1, 5, 15 min, at the end: how shared the machine was
        "payments": payments,
        "loop": loop,
        "duckdb_scan": duck,
        "validation": validation,
        "ceiling": ceiling,
        "predict": predict,
        "requests": requests_,
        "serving": serving,
        "startup": startup,
        "authorize": authorize,
        "bench_seconds": time.perf_counter() - started,
    }
    (root / "results.json").write_text(json.dumps(results, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results))
    say(f">> wrote {args.out} ({results['bench_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
