"""The fraud loop as a sequence of `kedro run`s, each in its app's folder and environment.

Apps never import each other; this orchestrator only starts them in order, exactly as a person
(or a scheduler) would, and reads what they published. `make demo` and the end-to-end test both
use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tooling import ROOT


@dataclass(frozen=True)
class Step:
    app: str
    pipeline: str
    params: Mapping[str, object] = field(default_factory=dict)
    title: str = ""

    def command(self, root: Path) -> list[str]:
        cmd = [str(env_bin(root, self.app, "kedro")), "run", "--pipelines", self.pipeline]
        if self.params:
            cmd += ["--params", ",".join(f"{k}={v}" for k, v in self.params.items())]
        return cmd


@dataclass(frozen=True)
class StepResult:
    step: Step
    seconds: float
    log: Path


def env_bin(root: Path, app: str, program: str) -> Path:
    """A program of an app's own environment. Environments live in the checkout they were
    synced in, which may differ from ``root`` when running a copy (tests)."""
    for base in (root, ROOT):
        candidate = base / app / ".venv" / "bin" / program
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{app}/.venv has no {program}: run `make install` first.")


def loop_steps(params: Mapping[str, Mapping[str, object]] | None = None) -> list[Step]:
    """simulate -> etl_instances -> etl_labels -> training -> promotion -> batch_scoring ->
    monitoring."""
    params = params or {}
    return [
        Step("etl_app", "simulate", params.get("simulate", {}), "simulate the source system"),
        Step("etl_app", "etl_instances", params.get("etl_instances", {}), "publish instances"),
        Step("etl_app", "etl_labels", params.get("etl_labels", {}), "publish labels"),
        Step("ml_app", "training", params.get("training", {}), "train, log and register"),
        Step("ml_app", "promotion", params.get("promotion", {}), "champion vs challenger gate"),
        Step("user_app", "batch_scoring", params.get("batch_scoring", {}), "score and decide"),
        Step("ml_app", "monitoring", params.get("monitoring", {}), "performance, drift, alerts"),
    ]


def app_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of an app's `kedro run`: ``base`` (default: this process's, so the
    documented overrides such as FRAUD_EXCHANGE_ROOT reach the apps) plus what Kedro needs."""
    env = dict(os.environ if base is None else base)
    env.update(
        KEDRO_DISABLE_TELEMETRY="true",
        UV_COMPILE_BYTECODE="1",
        MPLBACKEND="Agg",
        KEDRO_LOGGING_CONFIG=str(ROOT / "conf" / "logging.yml"),
    )
    return env


def run_steps(
    steps: Sequence[Step],
    root: Path = ROOT,
    log_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    echo: bool = True,
) -> list[StepResult]:
    """Run each step; stop at the first failure with the tail of its log."""
    log_dir = log_dir or root / "data" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for i, step in enumerate(steps, 1):
        log = log_dir / f"{i:02d}-{step.app}-{step.pipeline}.log"
        if echo:
            _say(
                f"[{i}/{len(steps)}] {step.app}: kedro run --pipelines {step.pipeline}"
                f"  ({step.title})"
            )
        started = time.perf_counter()
        with log.open("w") as out:
            proc = subprocess.run(
                step.command(root),
                cwd=root / step.app,
                env=app_environment(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(
                f"{step.app} `kedro run --pipelines {step.pipeline}` failed "
                f"(exit {proc.returncode}) after {seconds:.1f}s. Last lines of {log}:\n{tail}"
            )
        if echo:
            _say(f"      done in {seconds:.1f}s (log: {log.relative_to(root)})")
        results.append(StepResult(step, seconds, log))
    return results


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
