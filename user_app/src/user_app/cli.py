"""Kedro loads `<package>.cli` to modify project commands: `kedro run` ends with a short error."""

from shared_schemas.kedro_cli import cli

__all__ = ["cli"]
