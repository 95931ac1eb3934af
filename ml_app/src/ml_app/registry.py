"""Registry operations: aliases, the champion history that makes rollback exact, listings.

``python -m ml_app.registry models``   versions, aliases and key metrics (``make models``)
``python -m ml_app.registry rollback`` move ``champion`` back to the previous champion
                                       (``make rollback``)

The registered model carries a tag ``champion_history``: the champion versions in the order they
were promoted. Promotion appends to it, rollback removes the last entry and points ``champion``
at the one before, so a rollback always lands on exactly the version that was champion before.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

logger = logging.getLogger(__name__)
HISTORY_TAG = "champion_history"
POLICY_ARTIFACT = "decision_policy.json"  # the decision policy a training run evaluated
CARD_ARTIFACT = "model_card.md"
KEY_METRICS = ("validation.pr_auc", "validation.roc_auc", "validation.expected_cost_per_tx")


def _history(client: mlflow.MlflowClient, name: str) -> list[str]:
    tag = client.get_registered_model(name).tags.get(HISTORY_TAG, "")
    return [v for v in tag.split(",") if v]


def alias_version(client: mlflow.MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def make_champion(client: mlflow.MlflowClient, name: str, version: str, alias: str) -> None:
    """Point ``alias`` at ``version`` and record it in the champion history."""
    client.set_registered_model_alias(name, alias, str(version))
    history = _history(client, name)
    if not history or history[-1] != str(version):
        client.set_registered_model_tag(name, HISTORY_TAG, ",".join([*history, str(version)]))


def rollback(client: mlflow.MlflowClient, name: str, alias: str = "champion") -> tuple[str, str]:
    """Move ``alias`` back to the previous champion; return (from_version, to_version)."""
    history = _history(client, name)
    current = alias_version(client, name, alias)
    if len(history) < 2:
        raise RuntimeError(
            f"'{name}' has no previous champion to roll back to (champion history: "
            f"{history or 'empty'}). Nothing was changed."
        )
    if current != history[-1]:
        raise RuntimeError(
            f"'{name}@{alias}' is version {current}, but the champion history ends with "
            f"{history[-1]}: the alias was moved outside the promotion gate. Fix it by hand "
            "(MLflow UI) or promote through `make promote`."
        )
    previous = history[-2]
    client.set_registered_model_alias(name, alias, previous)
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(history[:-1]))
    return history[-1], previous


def record_new_version(client: mlflow.MlflowClient, name: str, version: str, run_id: str) -> None:
    """Registry bookkeeping of a version a training run just registered.

    * tags it with its provenance (ml_app version, git commit, contract version), its validation
      metrics and the decision policy it was evaluated with (also tagged on the run), and shows
      the run's model card as the version's description;
    * gives it the ``challenger`` alias: the newest model waits for the promotion gate;
    * gives it the ``champion`` alias too if no model has one yet, so a fresh installation can
      score right away. Replacing an existing champion is the promotion gate's job only.
    """
    from ml_app.model_logging import provenance  # noqa: PLC0415
    from shared_runtime.config import shared_resolver  # noqa: PLC0415

    metrics = client.get_run(run_id).data.metrics
    rounded = {k: f"{v:.6g}" for k, v in metrics.items() if k.startswith("validation.")}
    names = {a.path for a in client.list_artifacts(run_id)}
    for key, value in {**provenance(), **rounded}.items():
        client.set_model_version_tag(name, version, key, value)
    if POLICY_ARTIFACT in names:
        policy = mlflow.artifacts.load_text(f"runs:/{run_id}/{POLICY_ARTIFACT}")
        client.set_model_version_tag(name, version, "decision_policy", policy)
        client.set_tag(run_id, "decision_policy", policy)
    if CARD_ARTIFACT in names:  # the model card, shown as the version's description
        card = mlflow.artifacts.load_text(f"runs:/{run_id}/{CARD_ARTIFACT}")
        client.update_model_version(name, version, description=card)
    else:
        logger.warning("Run %s logged no %s.", run_id, CARD_ARTIFACT)
    challenger = shared_resolver("challenger_alias")
    champion = shared_resolver("champion_alias")
    client.set_registered_model_alias(name, challenger, version)
    current = alias_version(client, name, champion)
    if current is None:
        make_champion(client, name, version, champion)
        logger.info(
            "Registered %s version %s: no champion existed, so it is now '%s'.",
            name,
            version,
            champion,
        )
    else:
        logger.info(
            "Registered %s version %s as '%s' (champion is version %s; the promotion gate "
            "decides: `make promote`).",
            name,
            version,
            challenger,
            current,
        )


def version_info(client: mlflow.MlflowClient, name: str, version: str) -> dict[str, Any]:
    """A version with its run's params and metrics (what the promotion gate needs to know)."""
    mv = client.get_model_version(name, str(version))
    run = client.get_run(mv.run_id)
    return {
        "version": str(mv.version),
        "run_id": mv.run_id,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
    }


def list_models(client: mlflow.MlflowClient, name: str) -> list[dict[str, Any]]:
    # search results carry no aliases; the registered model's alias map is complete
    aliases: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    found = client.search_model_versions(f"name = '{name}'")
    for mv in sorted(found, key=lambda v: int(v.version)):
        metrics = client.get_run(mv.run_id).data.metrics
        rows.append(
            {
                "version": str(mv.version),
                "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
                **{k.split(".", 1)[1]: round(metrics[k], 4) for k in KEY_METRICS if k in metrics},
                "run_id": mv.run_id,
            }
        )
    return rows


def main(argv: list[str]) -> int:
    from shared_runtime.config import shared_resolver  # noqa: PLC0415

    mlflow.set_tracking_uri(shared_resolver("mlflow_tracking_uri"))
    client = mlflow.MlflowClient()
    name = shared_resolver("registered_model_name")
    alias = shared_resolver("champion_alias")
    command = argv[0] if argv else "models"
    if command == "models":
        try:
            rows = list_models(client, name)
        except MlflowException:
            rows = []
        if not rows:
            sys.stdout.write(f"No versions of '{name}' yet: run `make train`.\n")
            return 0
        columns = list(rows[0])
        sys.stdout.write("  ".join(f"{c:>22}" for c in columns) + "\n")
        for row in rows:
            sys.stdout.write("  ".join(f"{row.get(c, '')!s:>22}" for c in columns) + "\n")
        sys.stdout.write(f"champion history: {','.join(_history(client, name))}\n")
        return 0
    if command == "rollback":
        try:
            old, new = rollback(client, name, alias)
        except RuntimeError as exc:
            sys.stderr.write(f"{exc}\n")
            return 1
        sys.stdout.write(f"Rolled back '{name}@{alias}' from version {old} to version {new}.\n")
        return 0
    sys.stderr.write("usage: python -m ml_app.registry [models|rollback]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
