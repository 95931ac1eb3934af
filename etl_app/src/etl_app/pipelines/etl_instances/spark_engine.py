"""The same point-in-time features on Spark (``kedro run --env spark``).

There is one definition of the features: the SQL in :mod:`.features`, written for DuckDB. For
Spark it is transpiled with sqlglot (DuckDB dialect -> Spark SQL: ``epoch`` becomes
``UNIX_TIMESTAMP``, ``isodow`` becomes ``DAYOFWEEK`` arithmetic, ...), not rewritten by hand, so
the two engines cannot drift apart; a test runs both on the same payments and requires identical
features. pyspark and sqlglot are imported only here, so the default engine never loads them.
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from etl_app.pipelines.etl_instances.features import feature_sql


@cache
def spark_feature_sql(lookback_days: int) -> str:
    """The feature query in Spark SQL, transpiled from the DuckDB definition.

    One adaptation sqlglot does not make: Spark refuses ``median`` over a window frame, so it
    becomes ``percentile(x, 0.5)``, the same interpolated median.
    """
    import sqlglot  # noqa: PLC0415 (only the Spark engine needs it)
    from sqlglot import exp  # noqa: PLC0415

    def windowed_median(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Median):
            return exp.Anonymous(
                this="PERCENTILE", expressions=[node.this, exp.Literal.number(0.5)]
            )
        return node

    tree = sqlglot.parse_one(feature_sql(lookback_days), read="duckdb")
    return tree.transform(windowed_median).sql(dialect="spark")


def spark_features(payments: pd.DataFrame, chargebacks: pd.DataFrame, lookback_days: int):
    """The features as a Spark DataFrame, computed by the active Spark session."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    spark.createDataFrame(payments).createOrReplaceTempView("payments")
    spark.createDataFrame(chargebacks).createOrReplaceTempView("chargebacks")
    return spark.sql(spark_feature_sql(int(lookback_days)))
