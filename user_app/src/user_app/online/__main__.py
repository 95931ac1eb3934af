"""``python -m user_app.online`` (``make serve``): start the decision service.

Settings come from user_app's Kedro configuration like any pipeline's: ``parameters_online.yml``
(host, port, routing, limits, explanation groups) and the catalog (where decisions and the
prediction log are published, the reference sample for explanations). Command-line options
override the parameters; any ``online.*`` parameter can also be set with ``--params``.
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path

import uvicorn
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io.core import DatasetError
from threadpoolctl import threadpool_limits

from user_app.decisions import decision_thresholds
from user_app.online.explain import Explainer
from user_app.online.features import FeatureClient
from user_app.online.routing import (
    ModelRouter,
    Poller,
    RoutingPolicy,
    load_in_process_if_sound,
    load_in_worker,
)
from user_app.online.service import DecisionService, Limits, create_app
from user_app.online.sink import DecisionSink, SinkPolicy

logger = logging.getLogger("user_app.online")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m user_app.online", description=__doc__)
    parser.add_argument("--host", help="bind address (default from parameters: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default from parameters)")
    parser.add_argument("--canary", type=float, help="share of requests for the challenger")
    parser.add_argument("--shadow", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--env", default=None, help="Kedro environment")
    parser.add_argument("--params", default="", help="Kedro runtime params, e.g. online.port=9000")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="user_app folder")
    return parser.parse_args(argv)


def _runtime_params(text: str) -> dict[str, object]:
    """``a.b=1,c=true`` -> {"a": {"b": 1}, "c": True}: typed and nested like ``kedro run``'s."""
    params: dict[str, object] = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=", 1)
        *parents, leaf = key.strip().split(".")
        node = params
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value.strip())
    return params


def build(args: argparse.Namespace) -> tuple[object, dict]:
    """The FastAPI app and the parameters it was built from."""
    bootstrap_project(args.project)
    session = KedroSession.create(
        project_path=args.project, env=args.env, runtime_params=_runtime_params(args.params)
    )
    context = session.load_context()
    params = context.params["online"]
    catalog = context.catalog
    if args.canary is not None:
        params["routing"]["canary_fraction"] = args.canary
    if args.shadow is not None:
        params["routing"]["shadow"] = args.shadow
    registry = params["registry"]
    timeout = {"timeout_seconds": params["model_timeout_seconds"]}
    router = ModelRouter(
        registry["model_name"],
        registry["champion_alias"],
        registry["challenger_alias"],
        RoutingPolicy(**params["routing"]),
        functools.partial(load_in_worker, **timeout),
        functools.partial(load_in_process_if_sound, **timeout)
        if params["champion_in_process"]
        else None,
    )
    thresholds = decision_thresholds(catalog.load("decision_costs"))
    explainer = None
    try:
        reference = catalog.load("reference_instances")
        explainer = Explainer(
            reference, params["explanation"]["groups"], params["explanation"]["top_k"]
        )
    except (DatasetError, ValueError) as exc:
        logger.warning("Explanations are off: no reference instances (%s).", exc)
    service = DecisionService(
        router,
        DecisionSink(
            catalog,
            thresholds,
            spool=args.project / params["sink"]["spool"],
            policy=SinkPolicy(**{k: v for k, v in params["sink"].items() if k != "spool"}),
        ),
        thresholds,
        explainer,
        Limits(**params["limits"]),
        features=FeatureClient(
            params["authorize"]["features_url"], params["authorize"]["features_timeout_seconds"]
        ),
    )
    return create_app(service, Poller(router, params["reload_seconds"])), params


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    app, params = build(args)
    # Requests run concurrently; a model call must not start its own pool of threads on top
    # (OpenMP / BLAS): on a busy machine that oversubscribes the cores and the tail explodes.
    threadpool_limits(1)
    host = args.host or params["host"]
    port = args.port or params["port"]
    logger.warning("Serving %s on http://%s:%s", params["registry"]["model_name"], host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
