"""Every dataset that crosses an app boundary declares its contract in every app's catalog:
validated on save by its producer and on load by its consumers."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
APPS = ("etl_app", "ml_app", "user_app")
EXCHANGE = "${shared:exchange_root}"


def exchange_entries() -> list[tuple[str, str, dict]]:
    entries = []
    for app in APPS:
        for catalog in sorted((ROOT / app / "conf").rglob("catalog*.yml")):
            config = OmegaConf.to_container(OmegaConf.load(catalog), resolve=False) or {}
            for name, entry in config.items():
                if isinstance(entry, dict) and EXCHANGE in str(entry.get("filepath", "")):
                    entries.append((app, name, entry))
    return entries


def test_there_are_exchange_datasets_in_every_app():
    assert {app for app, _, _ in exchange_entries()} == set(APPS)


@pytest.mark.parametrize(("app", "name", "entry"), exchange_entries(), ids=lambda x: str(x)[:40])
def test_exchange_dataset_declares_its_contract(app, name, entry):
    validator = entry.get("validator")
    assert validator, f"{app}: exchange dataset '{name}' has no validator: declare its contract"
    # YAML 1.1 reads an unquoted `on` key as True; Kedro maps it back to "on" the same way.
    validator = {("on" if key is True else key): value for key, value in validator.items()}
    assert validator["class"] == "shared_runtime.enforce.ContractValidator"
    assert validator["options"]["contract"].startswith("shared_schemas.")
    assert entry["type"] == "shared_runtime.exchange.ExchangeParquetDataset"
    # the dataset checks every file's physical schema against the same contract
    assert entry.get("contract") == validator["options"]["contract"], (
        f"{app}: '{name}' must name its contract for the physical check too (`contract:`)"
    )
    producer = "producer" in entry
    assert validator["on"] == (["save"] if producer else ["load"]), (
        f"{app}: '{name}' must be validated on {'save (it produces it)' if producer else 'load'}"
    )


def test_each_exchange_dataset_has_one_producer_and_one_contract():
    by_path: dict[str, list[tuple[str, dict]]] = {}
    for app, _, entry in exchange_entries():
        by_path.setdefault(entry["filepath"], []).append((app, entry))
    for path, users in by_path.items():
        producers = [app for app, entry in users if "producer" in entry]
        assert len(producers) == 1, f"{path} is produced by {producers or 'nobody'}"
        contracts = {entry["validator"]["options"]["contract"] for _, entry in users}
        assert len(contracts) == 1, f"{path} is read with different contracts: {contracts}"


def test_the_decision_cost_model_has_one_home():
    """Apps that decide or judge decisions read conf/shared.yml's cost model through a catalog
    entry; no app parameter copies it (a `--params` override could judge another policy)."""
    for app in ("ml_app", "user_app"):
        catalog = OmegaConf.to_container(
            OmegaConf.load(ROOT / app / "conf/base/catalog.yml"), resolve=False
        )
        assert catalog["decision_costs"] == {
            "type": "MemoryDataset",
            "data": "${shared:decision_costs}",
        }, app
    copies = [
        str(p.relative_to(ROOT))
        for app in APPS
        for p in (ROOT / app / "conf").rglob("parameters*.yml")
        if "decision_costs" in (OmegaConf.load(p) or {})
    ]
    assert copies == []
