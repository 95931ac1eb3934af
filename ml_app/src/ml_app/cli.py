"""Kedro loads `<package>.cli` to modify project commands: `kedro run` ends with a short error.

``run`` is also what an installed app runs
(``python -m ml_app``, ``ml-app``; docs/deploying.md).
"""

from shared_runtime.kedro_cli import cli, run

__all__ = ["cli", "run"]
