"""`make live`: real-time authorization on loopback, then the proof that online equals offline.

1. **A world** with a champion model: by default the loop on small data in a new folder
   (``--root`` continues an existing world instead, e.g. the checkout after ``make demo``).
2. **Two services** on free loopback ports, each in its app's environment: etl_app's
   featurization service (``python -m etl_app.online_service``: a raw payment's features, from
   the source database) and user_app's decision service (``python -m user_app.online``, whose
   ``POST /authorize`` calls the former).
3. **The live simulator** (``python -m etl_app.live``): the source system produces payments in
   real time at ``--rate`` per second for ``--seconds``, with attack bursts; each is recorded in
   the source database, then authorized, as a payment gateway would.
4. The decision service is stopped: it publishes what it decided and the features it used
   (``online_decisions``, ``online_instances``).
5. **Reconciliation**: etl_app's batch pipeline publishes instances for the live period and
   user_app's batch scoring decides them with the same champion. Every payment's online features
   must equal the batch's bit for bit, and every online decision the batch's.

The apps never import each other; this orchestrator starts them as a scheduler would and reads
what they published.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.io.core import DatasetError

from tooling import ROOT
from tooling.conf import exchange_dataset
from tooling.loop.steps import Step, app_environment, env_bin, loop_steps, run_steps
from tooling.processes import Server, free_port
from shared_runtime.testing import isolated_app, isolated_env
from shared_schemas.etl_to_ml import TransactionInstance

APPS = ("etl_app", "ml_app", "user_app")
#: The small world `make live` builds when not given one (the cross-app tests' size).
SMALL_WORLD = {
    "simulate": {"simulate.n_customers": 1500, "simulate.n_merchants": 500},
    "training": {
        "training.model.hist_gradient_boosting.max_iter": 60,
        "evaluation.importance_sample": 2000,
    },
}
FEATURES = list(TransactionInstance.to_schema().columns)


@dataclass(frozen=True)
class LiveRun:
    """How the live simulator runs: payments per second, for how long, concurrent requests,
    its seed, and the simulate parameters the world was built with."""

    rate: float = 100.0
    seconds: float = 30.0
    clients: int = 8
    seed: int = 1
    world: Mapping[str, object] = field(default_factory=dict)
    # user_app's budget for a payment's features (``online.features_timeout_seconds``)
    features_timeout_seconds: float = 1.0
    # the gateway's budget for one /authorize answer (``--timeout`` of the live simulator)
    request_timeout_seconds: float = 2.0
    # share of the payments in attack bursts (a card, several payments a second)
    attack_share: float = 0.05


def build_world(root: Path, env: Mapping[str, str], echo: bool = True) -> None:
    """The loop on small data in ``root``: a source system, published data and a champion."""
    for app in APPS:
        isolated_app(ROOT / app, root)
    run_steps(loop_steps(SMALL_WORLD), root=root, log_dir=root / "logs", env=env, echo=echo)


def services(
    root: Path, env: Mapping[str, str], features_timeout_seconds: float
) -> tuple[Server, Server]:
    """(featurization service, decision service), not yet waited for: enter them in order."""
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = app_environment(env)
    fport, dport = free_port(), free_port()
    featurizer = Server(
        "etl_app featurization service",
        [
            str(env_bin(root, "etl_app", "python")),
            "-m",
            "etl_app.online_service",
            "--port",
            str(fport),
        ],
        cwd=root / "etl_app",
        env=env,
        ready_url=f"http://127.0.0.1:{fport}/ping",
        log=logs / "featurization-service.log",
    )
    params = {
        "online.port": dport,
        "online.features_url": f"http://127.0.0.1:{fport}",
        "online.features_timeout_seconds": features_timeout_seconds,
        "online.flush_seconds": 1,
    }
    decider = Server(
        "user_app decision service",
        [
            str(env_bin(root, "user_app", "python")),
            "-m",
            "user_app.online",
            "--project",
            str(root / "user_app"),
            "--params",
            ",".join(f"{k}={v}" for k, v in params.items()),
        ],
        cwd=root / "user_app",
        env=env,
        ready_url=f"http://127.0.0.1:{dport}/ping",
        log=logs / "decision-service.log",
    )
    return featurizer, decider


def drive(
    root: Path,
    env: Mapping[str, str],
    url: str,
    settings: LiveRun,
) -> dict[str, Any]:
    """Run the live simulator against ``url`` (POST /authorize); its summary."""
    summary = root / "logs" / "live-summary.json"
    cmd = [
        str(env_bin(root, "etl_app", "python")),
        "-m",
        "etl_app.live",
        "--authorize-url",
        url,
        "--rate",
        str(settings.rate),
        "--seconds",
        str(settings.seconds),
        "--clients",
        str(settings.clients),
        "--seed",
        str(settings.seed),
        "--timeout",
        str(settings.request_timeout_seconds),
        "--attack-share",
        str(settings.attack_share),
        "--answers",
        str(root / "logs" / "live-answers.jsonl"),
        "--summary-json",
        str(summary),
    ]
    if settings.world:
        cmd += ["--params", ",".join(f"{k}={v}" for k, v in settings.world.items())]
    with (root / "logs" / "live.log").open("w") as out:
        subprocess.run(
            cmd,
            cwd=root / "etl_app",
            env=app_environment(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=settings.seconds + settings.request_timeout_seconds + 300,
        )
    return json.loads(summary.read_text())


def live_days(online: pd.DataFrame) -> tuple[str, str]:
    """The whole days [start, end) that hold the live payments."""
    first = online["event_time"].min().floor("D")
    last = online["event_time"].max().floor("D") + pd.Timedelta(days=1)
    return first.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")


def _same_bits(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Per row: the two values are the same (floats compared bit for bit, NaN equal to NaN)."""
    x, y = a.to_numpy(), b.to_numpy()
    if x.dtype.kind == "f" and y.dtype.kind == "f":
        return x.astype(np.float64).view(np.int64) == y.astype(np.float64).view(np.int64)
    return np.asarray(x == y)


def compare_features(online: pd.DataFrame, batch: pd.DataFrame) -> dict[str, Any]:
    """Online feature rows against the batch's for the same payments: counts and examples."""
    batch = batch.set_index("transaction_id")
    missing = sorted(set(online["transaction_id"]) - set(batch.index))
    online = online[~online["transaction_id"].isin(missing)].set_index("transaction_id")
    batch = batch.loc[online.index]
    differ = pd.Series(False, index=online.index)
    columns: dict[str, int] = {}
    for column in FEATURES:
        if column == "transaction_id":
            continue
        same = _same_bits(online[column], batch[column])
        if not same.all():
            columns[column] = int((~same).sum())
            differ |= ~same
    examples = [
        {
            "transaction_id": int(tid),
            **{c: (str(online.at[tid, c]), str(batch.at[tid, c])) for c in columns},
        }
        for tid in online.index[differ.to_numpy()][:5]
    ]
    return {
        "compared": len(online),
        "differ": int(differ.sum()),
        "columns": columns,
        "missing_in_batch": len(missing),
        "examples": examples,
    }


def compare_decisions(online: pd.DataFrame, batch: pd.DataFrame) -> dict[str, Any]:
    """Online decisions against batch scoring's for the same payments."""
    both = online.merge(batch, on="transaction_id", suffixes=("_online", "_batch"))
    differ = both["decision_online"] != both["decision_batch"]
    return {
        "compared": len(both),
        "differ": int(differ.sum()),
        "max_score_difference": float((both["score_online"] - both["score_batch"]).abs().max())
        if len(both)
        else 0.0,
        "same_model_version": bool(
            (both["model_version_online"] == both["model_version_batch"]).all()
        ),
    }


def reconcile(root: Path, env: Mapping[str, str], echo: bool = True) -> dict[str, Any]:
    """Batch instances and batch decisions for the live period, compared with the online ones."""
    try:
        online = exchange_dataset(root, "user_app", "online_instances", env).load()
    except DatasetError:  # every payment got the fallback: nothing was scored online
        nothing = {"compared": 0, "differ": 0}
        return {
            "window": [None, None],
            "features": {**nothing, "columns": {}, "missing_in_batch": 0, "examples": []},
            "decisions": {**nothing, "max_score_difference": 0.0, "same_model_version": True},
        }
    start, end = live_days(online)
    window = {"window.start": start, "window.end": end}
    run_steps(
        [
            Step("etl_app", "etl_instances", window, "publish the live period's instances"),
            Step("user_app", "batch_scoring", window, "score them in batch"),
        ],
        root=root,
        log_dir=root / "logs" / "reconcile",
        env=env,
        echo=echo,
    )
    batch = exchange_dataset(root, "etl_app", "instances", env).load()
    decisions = exchange_dataset(root, "user_app", "decisions", env).load()
    online_decisions = exchange_dataset(root, "user_app", "online_decisions", env).load()
    return {
        "window": [start, end],
        "features": compare_features(online, batch),
        "decisions": compare_decisions(online_decisions, decisions),
    }


def live(
    root: Path, env: Mapping[str, str], settings: LiveRun, echo: bool = True
) -> dict[str, Any]:
    """Services up, the live simulator for ``seconds``, services down, then reconciliation."""
    featurizer, decider = services(root, env, settings.features_timeout_seconds)
    with featurizer, decider:
        url = decider.ready_url.removesuffix("/ping")
        started = time.perf_counter()
        summary = drive(root, env, f"{url}/authorize", settings)
        summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    # the decision service has stopped: everything it decided is published
    summary["reconciliation"] = reconcile(root, env, echo)
    return summary


def render(summary: dict[str, Any]) -> str:
    rec = summary["reconciliation"]
    features, decisions = rec["features"], rec["decisions"]
    lines = [
        "",
        "Live authorization summary",
        json.dumps({k: v for k, v in summary.items() if k != "reconciliation"}, indent=2),
        f"Batch reconciliation over {rec['window'][0]} .. {rec['window'][1]}:",
        f"  features: {features['differ']} of {features['compared']} payments differ from the "
        f"batch ({features['missing_in_batch']} missing in the batch)",
        f"  decisions: {decisions['differ']} of {decisions['compared']} differ from batch "
        f"scoring (largest score difference {decisions['max_score_difference']:.3g})",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        help="the world of an earlier `make live` (its folder, printed then); default: build one",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="payments per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the payments flow")
    parser.add_argument("--clients", type=int, default=4, help="concurrent requests")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--attack-share", type=float, default=0.05, help="share of payments in attack bursts"
    )
    parser.add_argument(
        "--features-timeout",
        type=float,
        default=1.0,
        help="user_app's budget for a payment's features, in seconds (then: the fallback)",
    )
    parser.add_argument(
        "--request-timeout", type=float, default=2.0, help="the gateway's budget per /authorize"
    )
    args = parser.parse_args(argv)
    if args.root is None:
        (ROOT / "data").mkdir(exist_ok=True)  # a fresh clone has no data/ yet
    root = (args.root or Path(tempfile.mkdtemp(prefix="live-", dir=ROOT / "data"))).resolve()
    env = isolated_env(root)
    if args.root is None:
        sys.stdout.write(f"Building a small world with a champion model in {root}\n")
        build_world(root, env)
    settings = LiveRun(
        rate=args.rate,
        seconds=args.seconds,
        clients=args.clients,
        seed=args.seed,
        world=SMALL_WORLD["simulate"],
        features_timeout_seconds=args.features_timeout,
        request_timeout_seconds=args.request_timeout,
        attack_share=args.attack_share,
    )
    summary = live(root, env, settings)
    (root / "live_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    sys.stdout.write(render(summary))
    sys.stdout.write(f"Summary: {root / 'live_summary.json'}; logs: {root / 'logs'}\n")
    ok = not summary["reconciliation"]["features"]["differ"]
    ok = ok and not summary["reconciliation"]["decisions"]["differ"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
