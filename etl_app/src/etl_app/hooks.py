"""Hooks run when etl_app's context is created.

:class:`SparkHooks`: a Spark session for runs that use the Spark engine (``kedro run --env
spark``). Kedro's documented pattern: the session is configured by ``conf/<env>/spark.yml`` and
created once, when the context is. Environments without a ``spark.yml`` (the default) never import
pyspark, so etl_app starts as fast as before.

:class:`SqliteSourceFolderHooks`: the folder of a SQLite source system. The default source URL,
``sqlite:///data/01_raw/source_system.db``, is relative to the working directory (in the monorepo,
etl_app/; for an installed app, the one docs/deploying.md describes), where the folder may not
exist yet.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kedro.config import MissingConfigException
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)


class SparkHooks:
    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        try:
            conf = context.config_loader["spark"]
        except MissingConfigException:
            return
        if not conf:
            return
        from pyspark import SparkConf  # noqa: PLC0415 (only Spark environments need it)
        from pyspark.sql import SparkSession  # noqa: PLC0415

        spark_conf = SparkConf().setAll([(k, str(v)) for k, v in conf.items()])
        session = (
            SparkSession.builder.appName(context.project_path.name)
            .config(conf=spark_conf)
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("WARN")
        logger.info("Spark session %s (%s)", session.version, session.sparkContext.master)


class SqliteSourceFolderHooks:
    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        try:
            con = context.config_loader["credentials"]["source_db"]["con"]
        except (MissingConfigException, KeyError, TypeError):
            return
        from sqlalchemy.engine import make_url  # noqa: PLC0415 (the catalog imports it anyway)

        url = make_url(con)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
