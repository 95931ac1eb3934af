"""Online scoring: an HTTP decision service in front of the registered pipeline model.

* :mod:`.service` - the FastAPI app: MLflow scoring protocol (``POST /invocations``), decisions
  with explanations (``POST /decisions``), health, version and reload endpoints.
* :mod:`.routing` - champion / challenger models, canary and shadow routing, hot reload when an
  alias moves.
* :mod:`.explain` - top contributing features of one decision.
* :mod:`.sink` - buffered, contract-validated publication of decisions and the prediction log.
* ``python -m user_app.online`` (``make serve``) - starts the service from user_app's Kedro
  configuration (``conf/base/parameters_online.yml`` and the catalog).

The client that calls the service, with timeouts, retries and a fallback decision, is
:mod:`user_app.client`.
"""
