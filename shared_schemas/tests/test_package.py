"""The contracts package holds contracts only: its version is the contract version."""

import pkgutil
import subprocess
import sys
from importlib.metadata import requires, version

from packaging.requirements import Requirement

import shared_schemas
from shared_schemas.etl_to_ml import TransactionInstance
from shared_schemas.strategies import contract_frames
from shared_schemas.versioning import CONTRACT_VERSION

RUNTIME = ("kedro", "omegaconf", "fsspec", "mlflow", "kedro_mlflow", "shared_runtime")


def test_the_package_version_is_the_contract_version():
    assert shared_schemas.__version__ == CONTRACT_VERSION == version("shared-schemas")


def test_importing_every_module_loads_no_runtime_code():
    """This env has kedro (shared-runtime is a dev dependency, for its pytest plugin): importing
    each contracts module in a fresh interpreter must still load none of it."""
    modules = [f"shared_schemas.{m.name}" for m in pkgutil.iter_modules(shared_schemas.__path__)]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({RUNTIME!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_dependencies_are_the_contracts_own():
    required = [Requirement(r) for r in requires("shared-schemas") or []]
    declared = {r.name for r in required if r.marker is None}
    assert declared == {"pandera", "pandas", "pyarrow", "packaging"}


def test_drawing_frames_leaves_the_contracts_row_rules_alone():
    before = [check.name for check in TransactionInstance.to_schema().checks]
    contract_frames(TransactionInstance)
    assert [check.name for check in TransactionInstance.to_schema().checks] == before != []
