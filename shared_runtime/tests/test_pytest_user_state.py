"""The plugin that fails a test session which touched the checkout's mlflow.db or data/.

It is loaded through its ``pytest11`` entry point, as in every member's environment."""

import pytest

CHECKOUT = {"conf/shared.yml": "exchange_root: data/exchange\n", "ml_app/conf/base/x.yml": ""}


def checkout(pytester) -> None:
    for path, text in CHECKOUT.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (pytester.path / "mlflow.db").write_bytes(b"the user's runs")


@pytest.mark.parametrize(
    "touched",
    [
        "mlflow.db",
        "data/exchange/instances/day=2025-06-01/part-0.parquet",
        "ml_app/data/x.pkl",
        "ml_app/mlruns/0/meta.yaml",
    ],
)
def test_a_session_that_writes_the_users_state_fails_naming_it(pytester, touched):
    checkout(pytester)
    pytester.makepyfile(
        f"""
        from pathlib import Path

        def test_forgets_its_temp_dir():
            target = Path({touched!r})
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"written by a test")
        """
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*changed the user's own state*", f"*{touched}*"])


def test_a_session_that_uses_temp_dirs_passes(pytester):
    checkout(pytester)
    pytester.makepyfile(
        """
        def test_tidy(tmp_path):
            (tmp_path / "mlflow.db").write_bytes(b"its own store")
        """
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.OK
