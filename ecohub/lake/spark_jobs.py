"""The national analyses over the lake as Spark jobs (PySpark; ``local[2]`` in the tests,
a cluster's master URL in production): the annual assessment of every air station and
city, the city ranking, the good-day ratios and the national figures, equal to the
in-database results, and the Mann-Kendall trends of those figures over several years.

Spark reads the year's partition of the lake's daily rollups, keeps the valid values of
the assessed series, joins each point to its station (a broadcast of the points
dimension) and groups the rows in batches of 64 stations; each batch is assessed on an
executor by the same pure rules as in the store (``applyInPandas``: a station's figures
depend on its own days only) and returns its stations' report documents and daily
values. The driver then
assesses the cities from those daily values (at most 2,000 stations × 366 days × 7
series, 41 MB) as one matrix: a city's daily value is a mean over its stations, and
computing it city by city would sum in another order than the in-database matrix
product and differ in the last bit (42,796 of 2.4 million cells, measured), which can
move a rounded figure or a rank.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from ecohub.assessment.service import READ_CODES, AnnualReport, Stations, assess_entities
from ecohub.clock import local_year_bounds, utcnow
from ecohub.lake.analyses import (
    LakeStations,
    cities_and_nation,
    daily_array,
    lake_stations,
    station_document,
    trends,
)

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

STATION_SCHEMA = "station int, document string, daily binary"
STATIONS_A_BATCH = 64  # stations assessed together on an executor


def session(master: str = "local[2]", app_name: str = "ecohub-lake") -> SparkSession:
    """A Spark session on ``master`` (``local[2]``, ``spark://host:7077``, ``yarn`` …)
    with UTC session time, Arrow transfers, few shuffle partitions and quiet logs. In
    local mode the Python workers are this interpreter (EcoHub's environment); on a
    cluster, the executors' Python with EcoHub installed is the cluster's setting
    (``spark.pyspark.python`` or ``PYSPARK_PYTHON``)."""
    from pyspark.sql import SparkSession

    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _some_stations(stations: Stations, chosen: list[int]) -> Stations:
    """The ``chosen`` stations alone, in that order, their points numbered to them."""
    position = {index: n for n, index in enumerate(chosen)}
    return Stations(
        [stations.codes[i] for i in chosen],
        [stations.names[i] for i in chosen],
        [stations.cities[i] for i in chosen],
        [stations.control[i] for i in chosen],
        {p: position[at] for p, at in stations.point_index.items() if at in position},
    )


def _batch_assessor(lake_points: LakeStations, year: int) -> Any:
    """The function each batch of stations' rows is given to on an executor: the batch
    is assessed as one array (a station's figures depend on its own days only)."""

    def assess(frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        chosen = sorted(int(i) for i in frame["station"].unique())
        rows = pl.from_pandas(frame[["point_id", "micros", "parameter", "value"]])
        values = daily_array(_some_stations(lake_points.stations, chosen), year, rows)
        result = assess_entities(values, year)
        documents = [
            json.dumps(station_document(lake_points, index, result, n), ensure_ascii=False)
            for n, index in enumerate(chosen)
        ]
        return pd.DataFrame(
            {"station": chosen, "document": documents, "daily": [v.tobytes() for v in values]}
        )

    return assess


def _rows_of_year(spark: SparkSession, lake: Path, year: int, lake_points: LakeStations) -> Any:
    """The year's valid daily values of the assessed series, with their station."""
    from pyspark.sql import functions as F

    folder = lake / "rollups" / f"year={year:04d}"
    rollups = spark.read.option("basePath", str(lake / "rollups")).parquet(str(folder))
    stations = spark.createDataFrame(
        sorted(lake_points.stations.point_index.items()), "point_id int, station int"
    )
    return (
        rollups.where(
            (F.col("period") == "day")
            & F.col("valid")
            & F.col("value").isNotNull()
            & F.col("parameter").isin(list(READ_CODES))
        )
        .select("point_id", F.unix_micros("ts").alias("micros"), "parameter", "value")
        .join(F.broadcast(stations), "point_id")
    )


def _assessed(spark: SparkSession, lake: Path, year: int, lake_points: LakeStations) -> Any:
    """The job: each batch of stations assessed on an executor, collected as pandas."""
    from pyspark.sql import functions as F

    return (
        _rows_of_year(spark, lake, year, lake_points)
        .withColumn("batch", F.floor(F.col("station") / STATIONS_A_BATCH))
        .groupBy("batch")
        .applyInPandas(_batch_assessor(lake_points, year), STATION_SCHEMA)
        .toPandas()
        .sort_values("station")
    )


def assess_spark(spark: SparkSession, lake: Path, year: int) -> AnnualReport | None:
    """The annual assessment of ``year`` over the lake as a Spark job (None when the lake
    holds no daily values of that year)."""
    if not (lake / "rollups" / f"year={year:04d}").exists():
        return None
    lake_points = lake_stations(lake)
    with warnings.catch_warnings():  # PySpark 4.3 warns of pandas 3 at every call
        warnings.filterwarnings("ignore", category=FutureWarning)
        assessed = _assessed(spark, lake, year, lake_points)
    if assessed.empty:
        return None
    start, end = local_year_bounds(year)
    days = (end - start).days
    values = np.stack(
        [np.frombuffer(blob, float).reshape(days, len(READ_CODES)) for blob in assessed["daily"]]
    )
    present = np.any(~np.isnan(values), axis=(1, 2))  # stations all of whose rows fell outside
    kept, values = assessed["station"].to_numpy()[present], values[present]
    documents = [json.loads(text) for text in assessed["document"][present]]
    cities, nation = cities_and_nation(lake_points, values, kept, year)
    return AnnualReport(year, utcnow(), documents, cities, nation)


def iter_reports(spark: SparkSession, lake: Path, years: list[int]) -> Iterator[AnnualReport]:
    """The assessments of several years (for trends), skipping years without data."""
    for year in years:
        report = assess_spark(spark, lake, year)
        if report is not None:
            yield report


def trends_spark(
    spark: SparkSession,
    lake: Path,
    years: list[int],
    pollutant: str = "PM2.5",
    scope: str = "city",
) -> list[dict[str, Any]]:
    """The Mann-Kendall trends and Sen's slopes of each city's (or station's) annual
    figure of ``pollutant`` over ``years``, from the Spark assessments of those years
    (:func:`ecohub.lake.analyses.trends` over :func:`iter_reports`)."""
    return trends(list(iter_reports(spark, lake, years)), pollutant, scope)
