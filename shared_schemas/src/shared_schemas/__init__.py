"""Versioned data contracts shared by etl_app, ml_app and user_app.

The package version is the contract version. Contract modules are one per boundary:

* :mod:`shared_schemas.etl_to_ml`  - TransactionInstance, FraudLabel
* :mod:`shared_schemas.ml_to_user` - FraudScore, FraudDecision, PredictionLog
* :mod:`shared_schemas.monitoring` - PromotionDecision

The Kedro side lives in :mod:`shared_schemas.exchange` (the exchange dataset) and
:mod:`shared_schemas.config` (the ``shared:`` resolver for cross-app settings).
"""

from shared_schemas.versioning import CONTRACT_VERSION

__version__ = CONTRACT_VERSION
__all__ = ["CONTRACT_VERSION", "__version__"]
