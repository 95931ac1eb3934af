"""The model card: what a reviewer needs to know about a trained model, as markdown."""

from __future__ import annotations

from typing import Any

from ml_app.model_logging import provenance


def write_model_card(
    metrics: dict[str, dict[str, float]], policy: dict[str, Any], params: dict[str, Any]
) -> str:
    """A markdown model card, logged with the run and shown on the registered version.

    ``metrics`` arrive as the ``validation`` dataset loads them from MLflow, named as logged
    (``validation.rows``, ...); the card names them without that prefix.
    """
    window, model, features = params["window"], params["model"], params["features"]
    family = model["family"]
    values = {name.removeprefix("validation."): m["value"] for name, m in metrics.items()}
    rows = "\n".join(
        f"| {name} | {value:.4f} |" for name, value in values.items() if name != "rows"
    )
    feature_list = ", ".join(
        f"`{f}`"
        for group in ("log_numeric", "numeric", "boolean", "categorical")
        for f in features[group]
    )
    origin = provenance()
    return f"""# Model card: fraud detector ({family})

**Purpose.** Scores card payments with the probability that they are fraudulent, for user_app
to approve, review or decline them.

**Data.** Trained on labelled payments from {window["train_start"]} to {window["train_end"]}
(exclusive), validated on {window["train_end"]} to {window["valid_end"]}. Labels are chargebacks
received by the labels' cutoff; payments with no chargeback count as legitimate only after the
maturity period. Input contract: `TransactionInstance`
(shared-schemas {origin["contract_version"]}).

**Features.** {feature_list}. All point-in-time: computed only from what was known before each
payment.

**Model.** `{family}` with {model.get(family) or {}}.

**Validation metrics** ({int(values.get("rows", 0)):,} payments):

| metric | value |
|---|---|
{rows}

**Decision policy.** Review from score {policy["review_threshold"]:.4f}, decline from
{policy["decline_threshold"]:.4f}: the thresholds of the shared cost model {policy["costs"]}
(`shared_runtime.policy`), the policy user_app deploys and the promotion gate and monitoring
judge; the validation cost above is that policy's.

**Ceiling.** On simulated data the Bayes-optimal PR-AUC comes from the simulator's true
probabilities, which ml_app never reads; `make demo` adds it below and as the version tags
`oracle.bayes_pr_auc` and `oracle.share_of_ceiling`.

**Known limits.** Trained on one period: fraud patterns drift, so monitor realised performance
and retrain. Scores are calibrated on the validation period only. Features look back a bounded
history (etl_app `lookback_days`). The model is cloudpickled code: load it only from your own
registry.

**Provenance.** ml_app {origin["ml_app_version"]}, commit `{origin["git_commit"]}`.
"""
