"""Which model answers a request: the champion, or the challenger for canary traffic.

Models are looked up by registry alias only (never by a URI from a request). A poller, or
``POST /admin/reload``, calls :meth:`ModelRouter.refresh`; when an alias has moved the new
version is loaded first and then swapped in with one assignment, so requests in flight finish
on the model they started with and none is dropped; the old version's worker process stops a
few seconds later, once the calls in flight on it are done. A version already loaded for the
other alias is reused, not loaded twice. A version that fails to load is tried again after a
growing pause (the roles are refreshed independently: a broken champion never keeps the
challenger from following its alias).

While the registry (the tracking server) is unreachable nothing changes: the loaded models keep
answering, ``aliases`` keeps the versions last seen, one warning says so (``registry_problem``
holds why, for ``/health``), and the next refresh after it is back follows the aliases again.
An alias that is really gone is another matter (the registry answered): the challenger is then
retired, and the champion kept with an error logged.

Each version runs in its own worker process by default (:func:`load_in_worker`), so each runs
with its own bundled code; the champion found at start-up runs in the service's process instead
when that is sound (:func:`load_in_process_if_sound`): the only bundle that process ever loads,
and no module it bundles already imported from other files.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kedro.io.core import DatasetError

from user_app.datasets import (
    RegisteredModelDataset,
    RegistryUnreachable,
    ScoringModel,
    load_with_own_code,
)
from user_app.online.models import ServedModel, shadowed_code
from user_app.online.worker import MODEL_TIMEOUT_SECONDS, RETIRE_GRACE_SECONDS

logger = logging.getLogger(__name__)
BUCKETS = 10_000
# pauses between attempts to load a version that failed to load: doubling, up to the last
RETRY_SECONDS = (30.0, 600.0)
Loader = Callable[[RegisteredModelDataset], ServedModel]


def load_in_worker(
    ref: RegisteredModelDataset, timeout_seconds: float = MODEL_TIMEOUT_SECONDS
) -> ServedModel:
    """The version ``ref`` points to now, in a new worker process (its own code); a call
    longer than ``timeout_seconds`` fails and stops that process."""
    resolved = ref.resolve()
    version = str(resolved.version)
    alias = ref.alias  # the router's references are aliases
    return ServedModel.in_worker(
        resolved.name, version, resolved.run_id, f"@{alias}", timeout_seconds
    )


def load_in_process(ref: RegisteredModelDataset) -> ServedModel:
    """The version ``ref`` points to now, in this process: only for one model per process."""
    return ServedModel.in_process(ref.load())


def load_in_process_if_sound(
    ref: RegisteredModelDataset, timeout_seconds: float = MODEL_TIMEOUT_SECONDS
) -> ServedModel:
    """In this process when that runs exactly the model's bundled code, else in a worker.

    For the first model a process loads: its bundle is then the only one on the path, and every
    module it bundles that the service has imported already (shared_schemas) must be the same
    files, or the model would silently run the service's copy.
    """
    import mlflow  # noqa: PLC0415

    resolved = ref.resolve()
    name, version = resolved.name, str(resolved.version)
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}"))
    clashes = shadowed_code(local / "code")
    if clashes:
        logger.warning(
            "Version %s bundles %s in versions other than this service's: it runs in a worker "
            "process with its own code.",
            version,
            clashes,
        )
        return ServedModel.in_worker(
            name, version, resolved.run_id, f"@{ref.alias}", timeout_seconds
        )
    scoring = ScoringModel(
        load_with_own_code(str(local)), name, version, resolved.run_id, f"@{ref.alias}"
    )
    return ServedModel.in_process(scoring)


@dataclass(frozen=True)
class RoutingPolicy:
    """``canary_fraction`` of requests answered by the challenger; ``shadow`` scores the
    challenger too, after answering with the champion, for comparison only."""

    canary_fraction: float = 0.0
    shadow: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.canary_fraction <= 1.0:
            raise ValueError(f"canary_fraction must be in [0, 1], not {self.canary_fraction}.")


def bucket(key: int) -> int:
    """A stable bucket in [0, BUCKETS) for a transaction id: a retried request routes the same."""
    return zlib.crc32(str(key).encode()) % BUCKETS


class ModelRouter:
    def __init__(
        self,
        model_name: str,
        champion_alias: str,
        challenger_alias: str,
        policy: RoutingPolicy,
        load: Loader = load_in_worker,
        load_first_champion: Loader | None = None,
    ) -> None:
        """``load`` loads every version (default: each in its own worker process);
        ``load_first_champion``, if given, loads the champion found at start-up instead (e.g.
        :func:`load_in_process_if_sound`: the one bundle this process ever loads; later
        versions, a challenger or a new champion, still go through ``load``)."""
        self.model_name = model_name
        self.policy = policy
        self._load = load
        self._refs = {
            "champion": RegisteredModelDataset(model_name=model_name, alias=champion_alias),
            "challenger": RegisteredModelDataset(model_name=model_name, alias=challenger_alias),
        }
        self._refresh_lock = threading.Lock()
        self._retiring: dict[int, tuple[threading.Timer, ServedModel]] = {}
        self._retire_lock = threading.Lock()
        # role -> (version that failed to load, failures so far, monotonic time of next try)
        self._failed: dict[str, tuple[str, int, float]] = {}
        # no champion: no service
        self.champion: ServedModel = (load_first_champion or load)(self._refs["champion"])
        self.challenger: ServedModel | None = None
        if policy.canary_fraction or policy.shadow:
            self.challenger = self._load_if_registered("challenger")
        # what each alias points to in the registry, whether or not its model is loaded (as
        # last seen: kept while the registry is unreachable)
        self.aliases: dict[str, str | None] = {}
        # why the registry did not answer at the last refresh (None: it did)
        self.registry_problem: str | None = None
        self._registry_down = False  # warned that it is unreachable, not yet that it is back
        self._resolve_aliases()

    def _resolve_aliases(self) -> None:
        for role, ref in self._refs.items():
            try:
                self.aliases[role] = str(ref.resolve().version)
            except RegistryUnreachable as exc:
                self._unreachable(exc)  # keep the version last seen
                self.aliases.setdefault(role, None)
            except DatasetError:
                self.aliases[role] = None

    def _unreachable(self, exc: RegistryUnreachable) -> None:
        if not self._registry_down:
            self._registry_down = True
            logger.warning(
                "The model registry is unreachable: serving the loaded models (champion %s, "
                "challenger %s) until it answers again. %s",
                self.champion.version if getattr(self, "champion", None) else None,
                self.challenger.version if getattr(self, "challenger", None) else None,
                exc,
            )
        self.registry_problem = str(exc)

    def _load_if_registered(self, role: str) -> ServedModel | None:
        try:
            return self._load(self._refs[role])
        except RegistryUnreachable as exc:
            logger.warning(
                "No %s model loaded (the registry did not answer; the next refresh tries "
                "again): all requests go to the champion. %s",
                role,
                exc,
            )
            return None
        except DatasetError:
            logger.warning("No %s model registered: all requests go to the champion.", role)
            return None

    def _challenger_differs(self) -> ServedModel | None:
        challenger = self.challenger
        if challenger is None or challenger.version == self.champion.version:
            return None
        return challenger

    def route(self, key: int) -> tuple[str, ServedModel]:
        """("canary", challenger) for the configured share of keys, else ("primary", champion)."""
        challenger = self._challenger_differs()
        if challenger and bucket(key) < self.policy.canary_fraction * BUCKETS:
            return "canary", challenger
        return "primary", self.champion

    def shadow_model(self) -> ServedModel | None:
        return self._challenger_differs() if self.policy.shadow else None

    def versions(self) -> dict[str, str | None]:
        challenger = self.challenger
        return {
            "champion": self.champion.version,
            "challenger": challenger.version if challenger else None,
        }

    def processes(self) -> dict[str, int | None]:
        """The worker process of each loaded model (None: in this process, or not loaded)."""
        return {
            role: model.process if model else None
            for role, model in (("champion", self.champion), ("challenger", self.challenger))
        }

    def refresh(self, force: bool = False) -> dict[str, str | None]:
        """Load the versions the aliases point to now, if they moved (or their worker process
        died); return the versions. Each role is refreshed even if another fails; the first
        failure is raised at the end. A version that failed to load is retried only after a
        pause (doubling up to ``RETRY_SECONDS[1]``) unless ``force`` (``POST /admin/reload``)."""
        errors: list[Exception] = []
        with self._refresh_lock:
            roles = ["champion"] + (
                ["challenger"] if self.policy.canary_fraction or self.policy.shadow else []
            )
            self.registry_problem = None  # set again below if it still does not answer
            try:
                for role in roles:
                    try:
                        self._refresh_role(role, force)
                    except Exception as exc:  # raised after the other roles
                        errors.append(exc)
            finally:
                self._resolve_aliases()
            if self._registry_down and self.registry_problem is None:
                self._registry_down = False
                logger.warning("The model registry answers again: following its aliases.")
        if errors:
            raise errors[0]
        return self.versions()

    def _refresh_role(self, role: str, force: bool) -> None:
        current: ServedModel | None = getattr(self, role)
        try:
            version = str(self._refs[role].resolve().version)
        except RegistryUnreachable as exc:
            self._unreachable(exc)  # unknown, not gone: keep what is loaded
            return
        except DatasetError:
            if role == "challenger":
                self.challenger = None
                self._retire(current)
            else:
                logger.error("The champion alias is gone: keeping version %s.", current)
            return
        if current is not None and current.version == version and current.alive():
            return
        loaded = self._loaded(version)
        if loaded is None:
            failed = self._failed.get(role)
            if failed and failed[0] == version and time.monotonic() < failed[2] and not force:
                return  # it failed to load a moment ago: wait before trying again
            try:
                loaded = self._load(self._refs[role])  # before the swap: no request waits
            except Exception:
                attempts = failed[1] + 1 if failed and failed[0] == version else 1
                pause = min(RETRY_SECONDS[0] * 2 ** (attempts - 1), RETRY_SECONDS[1])
                self._failed[role] = (version, attempts, time.monotonic() + pause)
                logger.exception(
                    "Could not load version %s as %s (attempt %d; next in %.0f s); serving %s.",
                    version,
                    role,
                    attempts,
                    pause,
                    current.version if current else None,
                )
                raise
        self._failed.pop(role, None)
        setattr(self, role, loaded)
        self._retire(current)
        logger.warning(
            "%s is now version %s (was %s)",
            role,
            loaded.version,
            current.version if current else None,
        )

    def _loaded(self, version: str) -> ServedModel | None:
        """The model of ``version`` already serving another role (alive), if any."""
        for model in (self.champion, self.challenger):
            if model is not None and model.version == version and model.alive():
                return model
        return None

    def _retire(self, model: ServedModel | None) -> None:
        """Close a swapped-out model once requests that picked it before the swap are done:
        after a grace period (they may not have called it yet), and then once the calls in
        flight on it have finished."""
        if model is None or model in (self.champion, self.challenger):
            return

        def close() -> None:
            with self._retire_lock:
                self._retiring.pop(id(model), None)
            model.close()

        timer = threading.Timer(RETIRE_GRACE_SECONDS, close)
        timer.daemon = True
        with self._retire_lock:
            self._retiring[id(model)] = (timer, model)
        timer.start()

    def close(self) -> None:
        """Stop every loaded model (their worker processes), retiring ones included."""
        with self._retire_lock:
            retiring, self._retiring = list(self._retiring.values()), {}
        for timer, _ in retiring:
            timer.cancel()
        models = [m for m in (self.champion, self.challenger) if m] + [m for _, m in retiring]
        for model in {id(m): m for m in models}.values():
            model.close()


class Poller:
    """Calls ``router.refresh()`` every ``seconds`` in a daemon thread until stopped."""

    def __init__(self, router: ModelRouter, seconds: float) -> None:
        self._router = router
        self._seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alias-poller", daemon=True)

    def start(self) -> None:
        if self._seconds > 0:
            self._thread.start()

    def stop(self) -> None:
        """Stop polling; returns once a refresh in progress has finished."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._router.refresh()
            except Exception:  # the registry may be briefly unreachable: keep serving
                logger.exception("Could not refresh the model aliases; serving the loaded ones.")
