"""Quiet logs by default: Kedro reads <app>/conf/logging.yml by itself in each app folder, and
every app's copy is the monorepo's conf/logging.yml (what the Makefile and scripts point at)."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("app", ["etl_app", "ml_app", "user_app"])
def test_each_app_has_the_shared_logging_config(app):
    copy = ROOT / app / "conf" / "logging.yml"
    assert copy.is_file(), f"{copy} is missing: `kedro run` in {app}/ would log Kedro's default"
    assert copy.read_text() == (ROOT / "conf" / "logging.yml").read_text()


def test_the_logging_config_is_quiet_and_plain():
    config = yaml.safe_load((ROOT / "conf" / "logging.yml").read_text())
    assert config["loggers"]["kedro"]["level"] == "WARNING"
    for app in ["etl_app", "ml_app", "user_app", "shared_runtime"]:
        assert config["loggers"][app]["level"] == "INFO"
    handlers = config["handlers"].values()
    assert all(h["class"] == "logging.StreamHandler" for h in handlers)  # no rich, no log files
