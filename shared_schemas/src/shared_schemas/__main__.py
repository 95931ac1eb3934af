"""``python -m shared_schemas export [DOCS_DIR]``: write the contracts documentation.

DOCS_DIR defaults to ``docs`` in the current folder (``make contracts`` runs from the monorepo
root); the contracts package knows nothing about the monorepo's layout.
"""

import sys
from pathlib import Path

from shared_schemas.export import export


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "export":
        sys.stderr.write("usage: python -m shared_schemas export [DOCS_DIR (default: ./docs)]\n")
        return 2
    docs_dir = Path(argv[1]) if len(argv) > 1 else Path("docs")
    for path in export(docs_dir):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
