"""The shared: resolver and `python -m shared_runtime.config <key>` (the Makefile's mlflow-ui)."""

import os
import subprocess
import sys
import tarfile

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


def _released_conf(folder):
    """A released app's conf layout: base/, local/ and the cross-app shared.yml beside them."""
    conf = folder / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "local").mkdir()
    (conf / "base" / "catalog.yml").write_text(
        "decisions:\n  type: MemoryDataset\n  metadata:\n"
        "    where: ${shared:exchange_root}/decisions\n"
        "    model: ${shared:registered_model_name}\n"
    )
    (conf / "shared.yml").write_text(
        "exchange_root: ${oc.env:FRAUD_EXCHANGE_ROOT,${root}/data/exchange}\n"
        "registered_model_name: released-model\n"
    )
    return conf


@pytest.mark.parametrize("archive", [False, True])
def test_an_installed_app_reads_the_shared_settings_of_its_conf_source(
    tmp_path, monkeypatch, archive
):
    """No checkout, no MONOREPO_ROOT, a working directory without conf/: the conf source's
    shared.yml is used, ``${root}`` being the folder holding the conf folder or archive."""
    from shared_runtime.config import SharedConfigLoader, shared_resolver

    deploy = tmp_path / "deploy"
    conf = _released_conf(deploy)
    source = conf
    if archive:
        source = tmp_path / "conf-app-0.1.0.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(conf, arcname="conf")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MONOREPO_ROOT", raising=False)
    monkeypatch.delenv("FRAUD_EXCHANGE_ROOT", raising=False)
    monkeypatch.setattr("shared_runtime.config._from_conf_source", None)  # restored afterwards
    loader = SharedConfigLoader(
        str(source),
        base_env="base",
        default_run_env="local",
        custom_resolvers={"shared": shared_resolver},
    )
    entry = loader["catalog"]["decisions"]["metadata"]
    assert entry == {
        "where": f"{source.parent}/data/exchange/decisions",
        "model": "released-model",
    }
    monkeypatch.setenv("FRAUD_EXCHANGE_ROOT", "/srv/exchange")
    assert shared_resolver("exchange_root") == "/srv/exchange"


def test_a_conf_source_without_shared_settings_keeps_the_monorepo_lookup(root, monkeypatch):
    from shared_runtime.config import SharedConfigLoader, shared_resolver

    (root / "app" / "conf" / "base").mkdir(parents=True)
    monkeypatch.chdir(root / "app")
    monkeypatch.delenv("MONOREPO_ROOT", raising=False)
    monkeypatch.setattr("shared_runtime.config._from_conf_source", None)
    SharedConfigLoader(str(root / "app" / "conf"), custom_resolvers={"shared": shared_resolver})
    assert shared_resolver("exchange_root") == f"{root}/data/exchange"
