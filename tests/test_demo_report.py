"""The demo's monitoring report has something to show: the window `make demo` scores contains
at least one whole monitoring week whose labels have matured by the demo's label cutoff."""

from pathlib import Path

import pandas as pd
import yaml

from tooling.loop.demo import DEMO_PARAMS

ROOT = Path(__file__).resolve().parents[1]


def test_the_demo_scores_at_least_one_week_that_has_matured():
    etl_globals = yaml.safe_load((ROOT / "etl_app/conf/base/globals.yml").read_text())
    labels = yaml.safe_load((ROOT / "etl_app/conf/base/parameters_etl_labels.yml").read_text())
    monitoring = yaml.safe_load((ROOT / "ml_app/conf/base/parameters_monitoring.yml").read_text())
    as_of = pd.Timestamp(etl_globals["labels_as_of"])
    final_until = as_of - pd.Timedelta(days=labels["etl_labels"]["maturity_days"])
    window = DEMO_PARAMS["batch_scoring"]
    start, end = pd.Timestamp(window["window.start"]), pd.Timestamp(window["window.end"])
    weeks = pd.period_range(
        start, end - pd.Timedelta(days=1), freq=monitoring["monitoring"]["period"]
    )
    matured = [w for w in weeks if w.end_time.normalize() + pd.Timedelta(days=1) <= final_until]
    assert matured, f"no scored week of {start:%Y-%m-%d}..{end:%Y-%m-%d} matures by {final_until}"
