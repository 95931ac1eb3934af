"""Contract versions: the shared-schemas package version *is* the contract version.

Exchange data records the version it was written with; a reader accepts data written with a
compatible version (same major; while the major is 0, same minor, as in semantic versioning's
rule that 0.x minors may break) and refuses anything else with a message that says what to do.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

try:
    CONTRACT_VERSION = version("shared-schemas")
except PackageNotFoundError:  # a copy shipped inside a logged model (MLflow code_paths)
    CONTRACT_VERSION = "0.0.0+unknown"


class IncompatibleContractError(ValueError):
    """Data was written under a contract version this reader cannot read safely."""


def _release(v: str) -> tuple[int, ...]:
    return (*Version(v).release, 0, 0)[:3]


def is_compatible(written: str, reader: str = CONTRACT_VERSION) -> bool:
    """True when data written under ``written`` is readable by a reader on ``reader``."""
    w_major, w_minor, _ = _release(written)
    r_major, r_minor, _ = _release(reader)
    if w_major != r_major:
        return False
    return w_major != 0 or w_minor == r_minor


def check_compatible(written: str | None, where: str, reader: str = CONTRACT_VERSION) -> None:
    """Raise :class:`IncompatibleContractError` unless ``written`` is readable by ``reader``."""
    if written is None:
        raise IncompatibleContractError(
            f"{where} carries no contract version: it was not written through shared_schemas. "
            "Re-run the producing app's pipeline to republish it."
        )
    if not is_compatible(written, reader):
        raise IncompatibleContractError(
            f"{where} was written with contract {written} but this app reads contract {reader} "
            f"(shared-schemas {reader}). Re-run the producer with shared-schemas {reader}, or "
            f"install a shared-schemas compatible with {written} in this app."
        )


def distribution_version(distribution: str) -> str:
    """Installed version of a distribution (e.g. 'etl-app'), or 'unknown' outside an install."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "unknown"
