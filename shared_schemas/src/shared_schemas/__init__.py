"""Versioned data contracts shared by etl_app, ml_app and user_app.

The package version is the contract version, so this package holds contracts and nothing that
changes for other reasons. Contract modules are one per boundary:

* :mod:`shared_schemas.gateway_to_etl` - PaymentRequest
* :mod:`shared_schemas.etl_to_ml`  - TransactionInstance, FraudLabel
* :mod:`shared_schemas.ml_to_user` - FraudScore, FraudDecision, PredictionLog
* :mod:`shared_schemas.monitoring` - PromotionDecision, MonitoringReport

Around them: :mod:`shared_schemas.versioning` (the compatibility rule),
:mod:`shared_schemas.physical` (the Parquet types a contract allows), :mod:`shared_schemas.examples`
and :mod:`shared_schemas.export` (``python -m shared_schemas export``). The code that enforces and
moves data under these contracts (exchange datasets, catalog validator, quarantine, the ``shared:``
resolver, the fast validator) is the separately versioned ``shared_runtime`` package.
"""

from shared_schemas.versioning import CONTRACT_VERSION

__version__ = CONTRACT_VERSION
__all__ = ["CONTRACT_VERSION", "__version__"]
