"""``python -m shared_schemas export [DOCS_DIR]``: write the contracts documentation."""

import sys
from pathlib import Path

from shared_schemas.config import find_monorepo_root
from shared_schemas.export import export


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "export":
        sys.stderr.write("usage: python -m shared_schemas export [DOCS_DIR]\n")
        return 2
    docs_dir = Path(argv[1]) if len(argv) > 1 else find_monorepo_root() / "docs"
    for path in export(docs_dir):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
