"""Kedro loads `<package>.cli` to modify project commands: `kedro run` ends with a short error."""

from shared_runtime.kedro_cli import cli

__all__ = ["cli"]
