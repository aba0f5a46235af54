"""Files of the national air quality real-time publishing platform (全国城市空气质量实时
发布平台, CNEMC), as mirrored in the widely used daily files ``china_sites_YYYYMMDD.csv``.

A file has one row per hour and type (``date,hour,type,<station codes…>``); types are
AQI, PM2.5, PM2.5_24h, PM10, PM10_24h, SO2, SO2_24h, NO2, NO2_24h, O3, O3_24h, O3_8h,
O3_8h_24h, CO and CO_24h; concentrations in μg/m³ (CO mg/m³); empty cells are missing.
Times are Beijing time; ``hour`` is the label the platform publishes.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.db.quarantine import Rejected, quarantine_rows
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.models import MonitoringPoint, SiteKind
from ecohub.registry.schemas import PointIn, SiteIn
from ecohub.registry.service import upsert_point, upsert_site
from ecohub.standards.aqi import hourly_aqi
from ecohub.timeseries.observations import Observation

CST = dt.timezone(dt.timedelta(hours=8))
# Published type → (HJ 212-2017 parameter code, factor to the parameter table's unit).
STORED_TYPES = {
    "PM2.5": ("a34004", 1.0),
    "PM10": ("a34002", 1.0),
    "SO2": ("a21026", 0.001),  # μg/m³ → mg/m³
    "NO2": ("a21004", 0.001),  # μg/m³ → mg/m³
    "O3": ("a05024", 1.0),
    "CO": ("a21005", 1.0),
}
POLLUTANT_TYPES = ("SO2", "NO2", "PM10", "PM2.5", "CO", "O3")


class CnemcFormatError(ValueError):
    """A file that is not a CNEMC hourly station file."""


def read_hourly_file(source: Path | str | bytes) -> pl.DataFrame:
    """Read one file into long form: station, date, hour, type, value (float; null if
    missing). Raises CnemcFormatError for a file of another shape."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    text = data.decode("utf-8-sig", errors="replace")
    try:
        wide = pl.read_csv(io.StringIO(text), infer_schema=False, truncate_ragged_lines=True)
    except pl.exceptions.PolarsError as error:
        raise CnemcFormatError(f"not a CSV file: {error}") from error
    if wide.columns[:3] != ["date", "hour", "type"]:
        raise CnemcFormatError(
            f"expected the columns date,hour,type,<stations>; found {wide.columns[:3]}"
        )
    # Read stations by their header name: a repeated one (3207A from June 2019, the same
    # values) once, empty names (trailing columns of 2023-01-21) not at all.
    header = text.split("\n", 1)[0].rstrip("\r").split(",")
    renamed: dict[str, str] = {}
    for column, name in zip(wide.columns[3:], header[3:], strict=False):
        name = name.strip()
        if name and name not in renamed.values():
            renamed[column] = name
    wide = wide.select(["date", "hour", "type", *renamed]).rename(renamed)
    stations = list(renamed.values())
    long = wide.unpivot(index=["date", "hour", "type"], on=stations, variable_name="station")
    return long.with_columns(
        pl.col("date").cast(pl.Int64, strict=False),
        pl.col("hour").cast(pl.Int64, strict=False),
        pl.col("value").str.strip_chars().cast(pl.Float64, strict=False),
    ).filter(pl.col("date").is_not_null() & pl.col("hour").is_not_null())


def station_hours(long: pl.DataFrame) -> pl.DataFrame:
    """One row per station and hour with a column per published type."""
    return long.pivot(
        on="type", index=["station", "date", "hour"], values="value", aggregate_function="first"
    )


def with_timestamps(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``ts``: the published date and hour as an aware datetime (Beijing time)."""
    return frame.with_columns(
        (
            pl.col("date").cast(pl.Utf8).str.strptime(pl.Datetime("us"), "%Y%m%d")
            + pl.duration(hours=pl.col("hour"))
        )
        .dt.replace_time_zone("Asia/Shanghai")
        .alias("ts")
    )


# --- AQI validation ------------------------------------------------------------------


@dataclass
class AQIValidation:
    """How the AQI recomputed from published concentrations compares with the
    published AQI."""

    compared: int = 0
    exact: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    primary_compared: int = 0
    primary_matched: int = 0
    skipped_no_published: int = 0

    @property
    def exact_rate(self) -> float:
        return self.exact / self.compared if self.compared else float("nan")

    def add_example(self, cause: str, text: str) -> None:
        examples = self.examples.setdefault(cause, [])
        if len(examples) < 5:
            examples.append(text)


def _column(frame: pl.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(frame.height, np.nan)
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def validate_aqi_frame(wide: pl.DataFrame, result: AQIValidation | None = None) -> AQIValidation:
    """Recompute each station-hour's AQI and compare it with the published one."""
    report = result or AQIValidation()
    published = _column(wide, "AQI")
    has_published = ~np.isnan(published)
    report.skipped_no_published += int(np.count_nonzero(~has_published))
    frame = wide.filter(pl.Series(has_published))
    if frame.height == 0:
        return report
    published = published[has_published]
    values = {name: _column(frame, name) for name in POLLUTANT_TYPES}
    computed = hourly_aqi(
        so2=values["SO2"],
        no2=values["NO2"],
        pm10=values["PM10"],
        pm25=values["PM2.5"],
        co=values["CO"],
        o3=values["O3"],
        so2_24h=_column(frame, "SO2_24h"),
    ).aqi
    report.compared += frame.height
    match = computed == published
    report.exact += int(np.count_nonzero(match))
    missing = np.stack([np.isnan(values[name]) for name in POLLUTANT_TYPES]).sum(axis=0)
    stations = frame["station"].to_list()
    dates = frame["date"].to_list()
    hours = frame["hour"].to_list()
    for index in np.flatnonzero(~match):
        if np.isnan(computed[index]):
            cause = "no concentration published"
        elif missing[index]:
            cause = "some concentrations not published"
        elif values["SO2"][index] > 800:
            cause = "SO2 1-h above 800 (24-h rule)"
        elif published[index] > computed[index]:
            cause = "published AQI higher than the standard gives"
        else:
            cause = "published AQI lower than the standard gives"
        report.causes[cause] += 1
        concentrations = ", ".join(f"{name}={values[name][index]:g}" for name in POLLUTANT_TYPES)
        report.add_example(
            cause,
            f"{stations[index]} {dates[index]} {hours[index]:02d}h: published "
            f"{published[index]:g}, computed {computed[index]:g} ({concentrations})",
        )
    return report


def validate_aqi_files(paths: Iterable[Path]) -> AQIValidation:
    report = AQIValidation()
    for path in paths:
        validate_aqi_frame(station_hours(read_hourly_file(path)), report)
    return report


# --- import into the store -------------------------------------------------------------


def observations_frame(long: pl.DataFrame) -> pl.DataFrame:
    """The stored types as rows: station, parameter_code, ts, value (in table units)."""
    mapping = pl.DataFrame(
        {
            "type": list(STORED_TYPES),
            "parameter_code": [code for code, _ in STORED_TYPES.values()],
            "factor": [factor for _, factor in STORED_TYPES.values()],
        }
    )
    return with_timestamps(
        long.join(mapping, on="type", how="inner").filter(pl.col("value").is_not_null())
    ).select(
        "station",
        "parameter_code",
        "ts",
        (pl.col("value") * pl.col("factor")).alias("value"),
    )


@dataclass
class ImportResult:
    files: int = 0
    values_read: int = 0
    written: int = 0
    unchanged: int = 0
    unknown_stations: set[str] = field(default_factory=set)
    bad_files: list[tuple[str, str]] = field(default_factory=list)
    flagged: int = 0  # new values stored with a quality flag (bulk import)
    reflagged: int = 0  # stored values whose flags changed (bulk import)
    days: dict[str, int] = field(default_factory=dict)  # days by path taken (bulk import)


def import_file_into_store(
    engine: Engine,
    path: Path,
    points: dict[str, int],
    result: ImportResult,
    pipeline: Pipeline | None = None,
) -> None:
    """Write one file's concentrations as hourly observations (source ``cnemc``) through
    the ingestion pipeline (quality control, rollups, station AQI). Pass one ``pipeline``
    for a series of files so that each series' quality context carries over.

    Stations without a monitoring point of the same code are quarantined once per file,
    with the number of values skipped.
    """
    try:
        long = read_hourly_file(path)
    except (CnemcFormatError, OSError) as error:
        result.bad_files.append((path.name, str(error)))
        quarantine_rows(
            engine,
            [
                Rejected(
                    source="cnemc",
                    reason_code="bad_file",
                    reason=f"{path.name}: {error}",
                    raw=str(path),
                )
            ],
        )
        return
    frame = observations_frame(long)
    result.files += 1
    result.values_read += frame.height
    known = frame.filter(pl.col("station").is_in(list(points)))
    unknown = frame.filter(~pl.col("station").is_in(list(points)))
    if unknown.height:
        counts = unknown.group_by("station").len()
        rejections = []
        for station, count in counts.iter_rows():
            result.unknown_stations.add(station)
            rejections.append(
                Rejected(
                    source="cnemc",
                    reason_code="unknown_station",
                    reason=f"{path.name}: station {station} is not a registered monitoring "
                    f"point; {count} values skipped",
                    raw=f"{path.name}:{station}",
                    point_code=station,
                )
            )
        quarantine_rows(engine, rejections)
    rows = [
        Observation(points[station], code, "hour", ts, value, "N", 0, "cnemc")
        for station, code, ts, value in known.iter_rows()
    ]
    pipeline = pipeline or Pipeline(engine)
    for start in range(0, len(rows), 50_000):
        written = pipeline.process(rows[start : start + 50_000])
        result.written += written.written
        result.unchanged += written.unchanged


def site_points(engine: Engine) -> dict[str, int]:
    """Monitoring point id by code, for points measuring a site."""
    with Session(engine) as session:
        rows = session.execute(
            select(MonitoringPoint.code, MonitoringPoint.id).where(
                MonitoringPoint.site_id.is_not(None)
            )
        ).all()
    return {code: point_id for code, point_id in rows}


def register_stations(engine: Engine, codes: Iterable[str], actor: str) -> int:
    """Register air sites (without coordinates) and their points for station codes."""
    count = 0
    with Session(engine) as session, session.begin():
        for code in sorted(codes):
            upsert_site(session, SiteIn(code=code, name=code, kind=SiteKind.AIR), actor)
            upsert_point(
                session, PointIn(code=code, name=code, site_code=code, interval_seconds=3600), actor
            )
            count += 1
    return count


# The station list the platform publishes (监测点编码, 监测点名称, 城市, 经度, 纬度).
STATION_COLUMNS = ("监测点编码", "监测点名称", "城市", "经度", "纬度")


def station_records(path: Path) -> list[dict[str, object]]:
    """Registry records (sites and points) from a CNEMC station list CSV."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    frame = pl.read_csv(io.StringIO(text), infer_schema=False)
    missing = [c for c in STATION_COLUMNS if c not in frame.columns]
    if missing:
        raise CnemcFormatError(f"{path.name}: station list lacks columns {missing}")
    records: list[dict[str, object]] = []
    for row in frame.iter_rows(named=True):
        code = (row["监测点编码"] or "").strip()
        site = {
            "code": code,
            "name": f"{row['城市'] or ''}{row['监测点名称'] or ''}".strip() or code,
            "kind": "air",
            "longitude": row["经度"] or None,
            "latitude": row["纬度"] or None,
        }
        records.append({"kind": "sites", "record": site})
        records.append(
            {
                "kind": "points",
                "record": {
                    "code": code,
                    "name": site["name"],
                    "site_code": code,
                    "interval_seconds": 3600,
                },
            }
        )
    return records
