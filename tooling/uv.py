"""The tools the tooling and tests run, found the way the Makefile finds them.

A fresh machine has only python3: the Makefile bootstraps uv into ``.tools/`` and exports its path
as ``UV``. Everything that runs uv asks :func:`uv_executable` instead of assuming ``uv`` is on
``PATH`` (it is on CI and on most developers' machines, which is how a bare ``uv`` hid).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tooling import ROOT


def uv_executable(root: Path = ROOT) -> str:
    """``$UV`` (set by the Makefile), else ``uv`` on PATH, else ``<root>/.tools/bin/uv``.

    Raises:
        FileNotFoundError: when none exists; `make install` bootstraps it.
    """
    for candidate in (os.environ.get("UV"), shutil.which("uv"), str(root / ".tools/bin/uv")):
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError(
        "uv was not found: run `make install`, which bootstraps it into .tools/"
    )
