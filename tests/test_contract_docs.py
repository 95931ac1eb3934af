"""docs/contracts.md and docs/contracts/*.json are generated; fail when they are stale."""

from pathlib import Path

from shared_schemas.export import render_json_schemas, render_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_contract_docs_are_up_to_date():
    hint = "run `make contracts` and commit the result"
    assert (DOCS / "contracts.md").read_text() == render_markdown(), hint
    for name, text in render_json_schemas().items():
        assert (DOCS / "contracts" / f"{name}.json").read_text() == text, f"{name}: {hint}"
