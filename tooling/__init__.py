"""The monorepo's own tools, run from the root environment by the Makefile (`python -m ...`).

One package per concern; each command is a module with a ``main`` (its thin entry point):

* ``tooling.loop``: the loop of the three apps as `kedro run`s in their own environments
  (``steps``), ``make demo`` (``demo``) and ``make simulate-months`` (``months``);
* ``tooling.bench``: ``make bench`` / ``make bench-smoke`` (``suite``) and the probes it runs in
  the apps' environments;
* ``tooling.release``: workspace members and their dependencies (``members``), ``make changed``,
  ``make release`` (``member``) and the release notes of the release workflow (``notes``);
* ``tooling.template``: ``copier copy`` / ``copier update`` adoption (``adopt``, the task of
  copier.yml; plain Python, it runs before any environment exists) and ``make new-app``;
* beside them: ``conf`` (locations, names and policies read from the apps' configuration),
  ``processes`` (loopback servers started and stopped), ``stack`` (``make servers``),
  ``ui_check`` (``make ui-check``) and ``uv`` (the uv the Makefile uses).

Apps never import this package, and it never imports an app: it starts them as processes and
reads what they publish, through the contracts.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
