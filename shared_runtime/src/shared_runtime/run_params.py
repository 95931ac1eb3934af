"""Run parameters checked before a run starts, the same way in every app.

Kedro accepts any ``--params key=value``: a typo (``windw.start``) is merged into the parameters
and ignored, and a bad date only fails later, inside a resolver that does not know which
parameter the user typed. :class:`RunParamsHooks` (registered in each app's ``settings.py``)
refuses, as soon as the context exists:

* a key that no parameter file declares and no ``${runtime_params:<key>}`` reads, with the
  nearest known keys as suggestions (difflib);
* a ``window`` (any parameter mapping named ``window``) whose values are not ISO dates
  (``YYYY-MM-DD``) or not strictly increasing (bounds named ``*start`` first, then the others in
  the order they are declared, e.g. train_start < train_end < valid_end), and an ``as_of``
  that is not a date. Errors name the key the user typed when there is one.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from kedro.framework.hooks import hook_impl

# The same pattern Kedro uses to find `${runtime_params:<key>, default}` in configuration.
_RUNTIME_KEY = re.compile(r"\$\{runtime_params:\s*([^,}]+)")


class RunParamsError(ValueError):
    """A run parameter that would make the run wrong or meaningless; the message says which."""


def leaf_keys(tree: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the leaves of a nested mapping: ``{"a": {"b": 1}}`` -> ``a.b``."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from leaf_keys(value, f"{path}.")
        else:
            yield path


def _all_keys(tree: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in tree.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, Mapping):
            yield from _all_keys(value, f"{path}.")


def declared_keys(conf_dirs: Iterable[Path]) -> set[str]:
    """Every key ``--params`` may set: parameter paths and keys read by ``runtime_params:``."""
    keys: set[str] = set()
    for conf_dir in conf_dirs:
        for path in sorted(Path(conf_dir).rglob("*.y*ml")):
            text = path.read_text(encoding="utf-8")
            keys.update(match.strip() for match in _RUNTIME_KEY.findall(text))
            if path.name.startswith("parameters"):
                keys.update(_all_keys(yaml.safe_load(text) or {}))
    return keys


def check_known(runtime_params: Mapping[str, Any], known: set[str]) -> None:
    """Refuse keys nothing reads, suggesting the nearest known ones."""
    problems = []
    for key in leaf_keys(runtime_params):
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        problems.append(f"unknown parameter '{key}': no parameter or configuration reads it.{hint}")
    if problems:
        raise RunParamsError(_message(problems))


def _message(problems: list[str]) -> str:
    text = "\n".join(f"  - {p}" for p in problems)
    return f"Refusing the run parameters (--params):\n{text}"


def _typed_key(leaf: str, value: Any, runtime_params: Mapping[str, Any], path: str) -> str:
    """The key the user typed for this value (e.g. ``window.start``), else the parameter path."""
    for key in leaf_keys(runtime_params):
        if key.rsplit(".", 1)[-1] == leaf and str(_get(runtime_params, key)) == str(value):
            return key
    return path


def _get(tree: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def _as_date(value: Any, key: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise RunParamsError(
            _message([f"{key}={value} is not a date (YYYY-MM-DD): {exc}."])
        ) from None


def _windows(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key, value in tree.items():
        if isinstance(value, Mapping):
            if key == "window":
                yield f"{prefix}{key}", value
            else:
                yield from _windows(value, f"{prefix}{key}.")


def _as_ofs(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from _as_ofs(value, f"{prefix}{key}.")
        elif key == "as_of" and value is not None:
            yield f"{prefix}{key}", value


def check_dates(params: Mapping[str, Any], runtime_params: Mapping[str, Any]) -> None:
    """Windows are ISO dates in increasing order; every ``as_of`` is a date."""
    for path, window in _windows(params):
        bounds = []
        for leaf, value in window.items():
            key = _typed_key(leaf, value, runtime_params, f"{path}.{leaf}")
            bounds.append((key, _as_date(value, key)))
        # bounds named *start* come first, the others in the order they are declared
        bounds.sort(key=lambda bound: 0 if bound[0].endswith("start") else 1)
        for (key_a, a), (key_b, b) in itertools.pairwise(bounds):
            if not a < b:
                raise RunParamsError(
                    _message(
                        [
                            f"{key_a}={a} must be before {key_b}={b} ({path} is [{key_a}, "
                            f"{key_b}), whole days): swap them or choose another window."
                        ]
                    )
                )
    for path, value in _as_ofs(params):
        leaf = path.rsplit(".", 1)[-1]
        _as_date(value, _typed_key(leaf, value, runtime_params, path))


def _runtime_as_of_keys(runtime_params: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key in leaf_keys(runtime_params):
        if key.endswith("as_of"):
            yield key, _get(runtime_params, key)


class RunParamsHooks:
    """Checks ``--params`` when the context is created, before any catalog entry is resolved."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        loader = context.config_loader
        runtime_params = dict(getattr(loader, "runtime_params", None) or {})
        conf_source = Path(loader.conf_source)
        dirs = [
            conf_source / loader.base_env,
            conf_source / (context.env or loader.default_run_env),
        ]
        if runtime_params:
            check_known(runtime_params, declared_keys(d for d in dirs if d.is_dir()))
            # resolver-only keys (e.g. labels_as_of) reach no window: check them as typed
            for key, value in _runtime_as_of_keys(runtime_params):
                _as_date(value, key)
        check_dates(context.params, runtime_params)
