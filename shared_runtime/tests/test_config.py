"""The shared: resolver and `python -m shared_runtime.config <key>` (the Makefile's mlflow-ui)."""

import os
import subprocess
import sys

import pytest

from shared_runtime.config import find_monorepo_root, load_shared_config


@pytest.fixture
def root(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "shared.yml").write_text(
        "exchange_root: ${root}/data/exchange\n"
        "registered_model_name: ${oc.env:FRAUD_MODEL_NAME,fraud-detector}\n"
    )
    return tmp_path


def test_settings_resolve_from_the_root_and_environment(root, monkeypatch):
    (root / "app").mkdir()
    assert find_monorepo_root(root / "app") == root
    monkeypatch.setenv("FRAUD_MODEL_NAME", "other")
    config = load_shared_config(root)
    assert config["exchange_root"] == f"{root}/data/exchange"
    assert config["registered_model_name"] == "other"


def test_the_module_prints_one_setting(root):
    env = {k: v for k, v in os.environ.items() if k != "FRAUD_MODEL_NAME"}
    out = subprocess.run(
        [sys.executable, "-m", "shared_runtime.config", "registered_model_name"],
        cwd=root,
        env={**env, "MONOREPO_ROOT": str(root)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "fraud-detector\n"
