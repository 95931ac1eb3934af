"""`make simulate-months` takes its retraining policy from ml_app's configuration
(parameters_retraining.yml), not from constants of the orchestrator, and keeps the windows and
triggers it had before the policy moved there."""

from pathlib import Path

import pandas as pd
import yaml

from tooling.conf import app_setting
from tooling.loop.months import champion_alerts, training_params
from shared_runtime.testing import isolated_app, isolated_env

ROOT = Path(__file__).resolve().parents[1]


def policy_of(root: Path) -> dict:
    return app_setting(root, "ml_app", "parameters", "retraining", isolated_env(root))


def test_the_default_policy_gives_the_windows_simulate_months_always_used(tmp_path):
    isolated_app(ROOT / "ml_app", tmp_path)
    params = training_params(pd.Timestamp("2025-04-01"), policy_of(tmp_path))
    # labels mature after 30 days (2025-03-02); 5 days left for the gate, 5 validate, 25 train
    assert params == {
        "training.window.train_start": "2025-01-26",
        "training.window.train_end": "2025-02-20",
        "training.window.valid_end": "2025-02-25",
    }


def test_a_local_override_of_the_policy_changes_the_windows(tmp_path):
    app = isolated_app(ROOT / "ml_app", tmp_path)
    # conf/local replaces the whole block (Kedro's default merge), as it does for ml_app's runs
    policy = yaml.safe_load((app / "conf/base/parameters_retraining.yml").read_text())
    policy["retraining"].update(train_days=60, valid_days=7, gate_days=10, promote=False)
    (app / "conf/local/parameters_retraining.yml").write_text(yaml.safe_dump(policy))
    assert policy_of(tmp_path)["promote"] is False
    assert training_params(pd.Timestamp("2025-04-01"), policy_of(tmp_path)) == {
        "training.window.train_start": "2024-12-15",
        "training.window.train_end": "2025-02-13",
        "training.window.valid_end": "2025-02-20",
    }


def report(rows: list[tuple[str, str, str, str, str, bool]]) -> pd.DataFrame:
    columns = ["period_start", "model_version", "kind", "metric", "feature", "alert"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(period_start=pd.to_datetime(frame["period_start"]))


def test_only_alerts_about_the_champion_of_the_policys_kinds_trigger(tmp_path):
    isolated_app(ROOT / "ml_app", tmp_path)
    policy = policy_of(tmp_path)
    rows = report(
        [
            ("2025-05-05", "2", "data_drift", "psi", "amount", True),
            ("2025-05-05", "2", "performance", "pr_auc", "", True),
            ("2025-05-12", "2", "score_drift", "psi", "", False),  # no alert
            ("2025-05-12", "1", "score_drift", "psi", "", True),  # not the champion
        ]
    )
    assert champion_alerts(rows, "2", policy) == {
        ("2025-05-05", "drift of amount"),
        ("2025-05-05", "PR-AUC drop"),
    }
    only_drift = {**policy, "retrain_on": ["data_drift"]}
    assert champion_alerts(rows, "2", only_drift) == {("2025-05-05", "drift of amount")}


def test_each_root_resolves_its_own_settings(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        isolated_app(ROOT / "user_app", root)
    paths = [
        app_setting(root, "user_app", "catalog", "decisions", isolated_env(root))["filepath"]
        for root in (first, second)
    ]
    assert paths == [
        str(first / "data/exchange/decisions"),
        str(second / "data/exchange/decisions"),
    ]
