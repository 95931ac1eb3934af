"""``kedro run`` that ends a failed run with a short, readable error instead of a traceback.

Each app's ``cli.py`` (Kedro's documented way to modify a project's CLI commands) exposes
:data:`cli`, whose ``run`` is Kedro's own command (same options, same behaviour) except that an
exception becomes ``Error: <type>: <message>`` and exit code 1. Kedro has already logged which
node failed. ``FRAUD_TRACEBACK=1 kedro run ...`` shows the full traceback.
"""

from __future__ import annotations

import os
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

TRACEBACK_ENV = "FRAUD_TRACEBACK"


class ShortErrorCommand(click.Command):
    """A click command whose unexpected exceptions print one readable paragraph."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get(TRACEBACK_ENV):
                raise
            raise click.ClickException(
                f"{type(exc).__name__}: {exc}\n(full traceback: {TRACEBACK_ENV}=1 kedro run ...)"
            ) from exc


run = ShortErrorCommand(
    name="run",
    callback=kedro_run.callback,
    params=kedro_run.params,
    help=kedro_run.help,
    context_settings=kedro_run.context_settings,
)


@click.group(name="project")
def cli() -> None:
    """Project commands (Kedro's, with short errors for `run`)."""


cli.add_command(run)
