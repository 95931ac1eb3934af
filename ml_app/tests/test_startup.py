"""Registering ml_app's pipelines and loading its settings import no heavy library: they are
imported by the nodes and hooks that use them, so `kedro registry list` and every run's start
stay fast (docs/benchmarks.md, section 3)."""

import json
import subprocess
import sys

HEAVY = ("mlflow", "sklearn", "matplotlib", "scipy", "treelite")
PROBE = f"""
import json, sys
import ml_app.settings
from ml_app.pipeline_registry import register_pipelines
pipelines = register_pipelines()
print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
"""


def test_registering_pipelines_imports_no_heavy_library():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
