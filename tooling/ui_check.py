"""`make ui-check`: what a new user sees in kedro-viz and the MLflow UI, checked in a real browser.

Builds a small world of its own (simulate -> etl -> train, ~30 s) so it works on a fresh machine,
serves ml_app's kedro-viz site and `mlflow ui` on loopback ports, opens each page in headless
Chromium, fails if a page does not render what it should (node names, run name, metric, model
name and aliases in the DOM) or shows what a user did not ask for (kedro-viz's update reminder
and feature tour), and saves screenshots under docs/images/. Chromium comes from the Debian
package, installed by this script when missing (apt-get; sudo when not root).

kedro-viz is the site `kedro viz build` writes (the same app and pipelines as `kedro viz run`):
`kedro viz run` asks PyPI for a newer release on every page and, offline, kedro-viz 12.5 turns
the failed check into "Kedro-Viz None is here!" (it compares ``str(None)``); the built site
reports the installed version. The feature tour is kedro-viz's own setting
(``showFeatureHints`` in the ``KedroViz`` localStorage entry), turned off by a small page served
beside the site before it redirects to it, as a returning user would have it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow

from tooling.conf import shared_settings
from tooling.loop.steps import ROOT, env_bin, loop_steps, run_steps
from tooling.processes import Server, free_port
from shared_runtime.testing import isolated_app, isolated_env

WORLD = {
    "simulate": {"simulate.n_customers": 1500, "simulate.n_merchants": 500},
    "training": {
        "training.model.hist_gradient_boosting.max_iter": 60,
        "evaluation.importance_sample": 2000,
    },
}
IMAGES = ROOT / "docs" / "images"


@dataclass(frozen=True)
class Page:
    name: str  # screenshot file name (without .png)
    url: str
    expected: tuple[str, ...]  # strings the rendered DOM must contain (case-insensitive)
    size: str = "1600,1000"
    forbidden: tuple[str, ...] = ()  # strings the rendered DOM must not contain


# kedro-viz's update reminder ("Kedro-Viz <version> is here!") and feature tour
VIZ_NOISE = ("is here!", "update-reminder-unexpanded", "feature-hints__")
VIZ_SEED = "ui-check-settings.html"
VIZ_SEED_PAGE = """<!doctype html><meta charset="utf-8"><script>
const settings = JSON.parse(localStorage.getItem("KedroViz") || "{}");
settings.showFeatureHints = false;
localStorage.setItem("KedroViz", JSON.stringify(settings));
location.replace("index.html" + location.search + location.hash);
</script>
"""


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def chromium() -> str:
    """The Chromium binary, installing the Debian package if needed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    say(">> installing Chromium (Debian package)")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "chromium"], check=True, env=env)
    return shutil.which("chromium") or "chromium"


def browse(browser: str, page: Page, out_dir: Path, profile: Path) -> list[str]:
    """Render ``page`` headless; save a screenshot; return the expected strings not found."""
    common = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={page.size}",
        "--virtual-time-budget=20000",
        "--run-all-compositor-stages-before-draw",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", page.url], capture_output=True, text=True, timeout=120, check=False
    ).stdout.lower()
    shot = out_dir / f"{page.name}.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", page.url], capture_output=True, timeout=120, check=True
    )
    if not shot.exists() or shot.stat().st_size < 10_000:
        return ["(no screenshot)"]
    missing = [text for text in page.expected if text.lower() not in dom]
    return missing + [f"(shows {text!r})" for text in page.forbidden if text.lower() in dom]


def build_viz_site(root: Path, env: dict[str, str]) -> Path:
    """ml_app's kedro-viz site (`kedro viz build`) with the settings page beside it."""
    app = root / "ml_app"
    shutil.rmtree(app / "build", ignore_errors=True)
    subprocess.run(
        [str(env_bin(ROOT, "ml_app", "kedro")), "viz", "build"],
        cwd=app,
        env=env,
        check=True,
        capture_output=True,
    )
    (app / "build" / VIZ_SEED).write_text(VIZ_SEED_PAGE)
    return app / "build"


def build_world(root: Path) -> dict[str, str]:
    shutil.rmtree(root, ignore_errors=True)
    for app in ("etl_app", "ml_app"):
        isolated_app(ROOT / app, root)
    env = isolated_env(root, {"KEDRO_LOGGING_CONFIG": str(ROOT / "conf/logging.yml")})
    steps = [s for s in loop_steps(WORLD) if s.app in ("etl_app", "ml_app")][:4]
    run_steps(steps, root=root, log_dir=root / "logs", env=env)  # up to training
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT / "data" / "ui-check")
    parser.add_argument("--images", type=Path, default=IMAGES)
    args = parser.parse_args(argv)
    browser = chromium()
    root = args.root.resolve()
    say(">> building a small world (simulate -> etl -> train)")
    env = build_world(root)
    settings = shared_settings(root, env)
    tracking, model = settings["mlflow_tracking_uri"], settings["registered_model_name"]
    client = mlflow.MlflowClient(tracking)
    version = client.get_model_version_by_alias(model, settings["champion_alias"])
    run = client.get_run(version.run_id)
    experiment = run.info.experiment_id

    viz_port, ui_port = free_port(4141), free_port(5000)
    viz_url, ui_url = f"http://127.0.0.1:{viz_port}", f"http://127.0.0.1:{ui_port}"
    site = build_viz_site(root, env)
    viz_cmd = [
        sys.executable,
        "-m",
        "http.server",
        str(viz_port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(site),
    ]
    ui_cmd = [
        str(env_bin(ROOT, "ml_app", "mlflow")),
        "ui",
        "--host",
        "127.0.0.1",
        "--port",
        str(ui_port),
        "--backend-store-uri",
        tracking,
    ]
    pages = [
        Page(
            "kedro_viz_ml_app",
            f"{viz_url}/{VIZ_SEED}?pid=training",
            ("build_model_input", "predict_scores", "fit_classifier", "validate_instances"),
            forbidden=VIZ_NOISE,
        ),
        Page(
            "mlflow_runs",
            f"{ui_url}/#/experiments/{experiment}/runs",
            (run.info.run_name, "ml_app"),
        ),
        Page(
            "mlflow_run_metrics",
            f"{ui_url}/#/experiments/{experiment}/runs/{run.info.run_id}/model-metrics",
            ("validation.pr_auc", "validation.roc_auc"),
            size="1600,1900",  # all ten metric charts on screen
        ),
        Page(
            "mlflow_registered_model",
            f"{ui_url}/#/models/{model}",
            (model, settings["champion_alias"], settings["challenger_alias"]),
        ),
    ]
    args.images.mkdir(parents=True, exist_ok=True)
    failures = {}
    with (
        Server("kedro-viz", viz_cmd, root / "ml_app", env, viz_url, root / "kedro-viz.log"),
        Server("mlflow-ui", ui_cmd, root / "ml_app", env, ui_url, root / "mlflow-ui.log"),
    ):
        for page in pages:
            missing = browse(browser, page, args.images, root / "chromium-profile")
            say(
                f"   {page.name:26} {'ok' if not missing else 'MISSING ' + ', '.join(missing)}"
                f"  ({page.url})"
            )
            if missing:
                failures[page.name] = missing
    if failures:
        say(f"UI check failed: {failures}")
        return 1
    say(f">> screenshots in {args.images}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
