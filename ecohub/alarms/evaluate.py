"""Evaluating the alarm rules as data arrives, inside the pipeline's transaction.

The pipeline hands over what a batch recomputed (hourly and daily rollups, station AQI)
and the points it heard from; the evaluator judges exactly those periods with the rules
of :mod:`ecohub.alarms.rules`, applies the judgements (:mod:`ecohub.alarms.lifecycle`)
and queues notifications (:mod:`ecohub.alarms.notify`). Late and re-sent data are
re-judged the same way, because the pipeline recomputes every period they touch.

Data anomalies judge an hour once it is complete, i.e. once the point has sent data for
a later hour, so that a value still to come in the hour cannot flip the verdict.
Offline points are found by :func:`sweep_offline`, run periodically, since silence
brings no data to evaluate.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import reduce
from operator import or_
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from ecohub.alarms import rules
from ecohub.alarms.context import AlarmRegistry, LimitInfo, PointContext, load_registry
from ecohub.alarms.events import Event, Sample, Subject
from ecohub.alarms.lifecycle import apply_samples
from ecohub.alarms.notify import enqueue
from ecohub.alarms.rules import Judgement
from ecohub.alarms.tables import AlarmKind, AlarmStatus, alarms
from ecohub.clock import local_zone, previous_local_day
from ecohub.config import Settings, get_settings
from ecohub.registry.models import (
    MonitoringPoint,
)
from ecohub.timeseries.aqi import DAILY_CODES, group_aqi
from ecohub.timeseries.tables import rollups

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
REGISTRY_TTL = dt.timedelta(seconds=30)
HEAVY_POLLUTION_LOOKBACK_DAYS = 10
_CHUNK = 500
# A point's last-seen time is written at most this often per writer: every batch used to
# update the row of every point in it (thousands of row writes a second under load),
# and offline alarms only need it to within a reporting interval (at least a minute).
LAST_SEEN_RESOLUTION = dt.timedelta(seconds=10)

# city code, day (local midnight in UTC) → forecast daily AQIs of the following days.
ForecastProvider = Callable[[str, dt.datetime], Sequence[float]]


class AlarmEvaluator:
    """The alarm rules of one pipeline (one store)."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        *,
        forecast: ForecastProvider | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or get_settings()
        self.anomaly_hours = rules.parse_anomaly_hours(self.settings.anomaly_hours)
        # The documented hook for forecast-based heavy-pollution warnings.
        self.forecast = forecast
        self.registry = AlarmRegistry()
        # point → hour → series → quality flags of its hourly rollup
        self._hour_flags: dict[int, dict[dt.datetime, dict[str, int]]] = {}
        self._latest_hour: dict[int, dt.datetime] = {}
        self._judged_until: dict[int, dt.datetime] = {}
        # (point, -Cou series, local year) → day start → daily sum
        self._annual: dict[tuple[int, str, int], dict[dt.datetime, float]] = {}
        self._seen_written: dict[int, dt.datetime] = {}  # last-seen times written

    def forget(self) -> None:
        """Drop what was kept in memory (after a rolled-back batch); it is re-read."""
        self._hour_flags.clear()
        self._latest_hour.clear()
        self._judged_until.clear()
        self._annual.clear()
        self._seen_written.clear()

    # --- registry ----------------------------------------------------------------------

    def _refresh(self, connection: Connection, now: dt.datetime) -> None:
        self.registry = load_registry(connection, now)

    def _ensure_registry(
        self, connection: Connection, point_ids: Iterable[int], now: dt.datetime
    ) -> None:
        loaded = self.registry.loaded_at
        if (
            loaded is None
            or abs(now - loaded) > REGISTRY_TTL
            or any(p not in self.registry.points for p in point_ids)
        ):
            self._refresh(connection, now)

    def _limit(self, point: PointContext, code: str, at: dt.datetime) -> LimitInfo | None:
        if point.outlet_id is None:
            return None
        day = at.astimezone(local_zone()).date()
        for info in self.registry.limits.get((point.outlet_id, code), ()):
            if info.valid_from <= day <= info.valid_to:
                return info
        return None

    # --- evaluation --------------------------------------------------------------------

    def evaluate(
        self,
        connection: Connection,
        hours: Sequence[dict[str, Any]],
        days: Sequence[dict[str, Any]],
        aqi: Sequence[dict[str, Any]],
        point_ids: Iterable[int],
        now: dt.datetime,
    ) -> list[Event]:
        """Judge what one batch recomputed; returns the lifecycle events (already queued
        for notification)."""
        point_ids = set(point_ids)
        self._ensure_registry(connection, point_ids | {row["point_id"] for row in hours}, now)
        samples: list[Sample] = []
        samples += self._source_hours(connection, hours)
        samples += self._ambient(hours, days, aqi)
        samples += self._mass(connection, days)
        samples += self._anomalies(connection, hours)
        samples += self._heavy_pollution(connection, aqi)
        samples += self._back_online(connection, point_ids, now)
        events = apply_samples(connection, samples, now)
        stale = self._last_seen_to_write(point_ids, now)
        for start in range(0, len(stale), _CHUNK):
            connection.execute(
                update(MonitoringPoint)
                .where(MonitoringPoint.id.in_(stale[start : start + _CHUNK]))
                .values(last_seen_at=now)
            )
        enqueue(connection, events, now)
        return events

    def _last_seen_to_write(self, point_ids: set[int], now: dt.datetime) -> list[int]:
        """The points whose stored last-seen time is LAST_SEEN_RESOLUTION or more away
        from ``now`` (as far as this writer wrote it), in id order; noted as written."""
        written = self._seen_written
        stale = sorted(
            point_id
            for point_id in point_ids
            if (last := written.get(point_id)) is None or abs(now - last) >= LAST_SEEN_RESOLUTION
        )
        for point_id in stale:
            written[point_id] = now
        return stale

    # --- pollution sources ---------------------------------------------------------------

    def _source_hours(
        self, connection: Connection, hours: Sequence[dict[str, Any]]
    ) -> list[Sample]:
        points = self.registry.points
        candidates = []
        for row in hours:
            point = points.get(row["point_id"])
            if point is None or point.outlet_id is None or not row["valid"]:
                continue
            if row["value"] is None or "-" in row["parameter_code"]:
                continue
            info = self._limit(point, row["parameter_code"], row["ts"])
            if info is not None:
                candidates.append((point, row, info))
        if not candidates:
            return []
        known = {
            (row["point_id"], row["parameter_code"], row["ts"]): row
            for row in hours
            if row["valid"] and row["value"] is not None
        }
        wanted = {
            (point.id, code, row["ts"])
            for point, row, info in candidates
            if info.reference_o2 is not None
            for code in (rules.O2_CODE, row["parameter_code"] + "-ZsAvg")
        } - set(known)
        known.update(self._read_hours(connection, wanted))
        samples = []
        for point, row, info in candidates:
            code, ts = row["parameter_code"], row["ts"]
            o2 = known.get((point.id, rules.O2_CODE, ts))
            converted = known.get((point.id, code + "-ZsAvg", ts))
            judgement = rules.source_exceedance(
                row["value"],
                info.concentration_limit,
                info.unit,
                reference_o2=info.reference_o2,
                measured_o2=o2["value"] if o2 else None,
                converted_mean=converted["value"] if converted else None,
            )
            if judgement is None:
                continue
            judgement.evidence["permit_no"] = info.permit_no
            samples.append(
                Sample(
                    AlarmKind.SOURCE_EXCEEDANCE,
                    f"source_exceedance:{point.id}:{code}",
                    ts,
                    HOUR,
                    judgement,
                    Subject(point.id, None, point.enterprise_id, point.region_code, code),
                )
            )
        return samples

    def _read_hours(
        self, connection: Connection, wanted: set[tuple[int, str, dt.datetime]]
    ) -> dict[tuple[int, str, dt.datetime], dict[str, Any]]:
        if not wanted:
            return {}
        found = {}
        codes = sorted({code for _, code, _ in wanted})
        point_ids = sorted({point for point, _, _ in wanted})
        first = min(ts for _, _, ts in wanted)
        last = max(ts for _, _, ts in wanted)
        for start in range(0, len(point_ids), _CHUNK):
            query = select(
                rollups.c.point_id, rollups.c.parameter_code, rollups.c.ts, rollups.c.value
            ).where(
                rollups.c.point_id.in_(point_ids[start : start + _CHUNK]),
                rollups.c.parameter_code.in_(codes),
                rollups.c.period == "hour",
                rollups.c.valid.is_(True),
                rollups.c.ts >= first,
                rollups.c.ts <= last,
            )
            for point_id, code, ts, value in connection.execute(query):
                if (point_id, code, ts) in wanted and value is not None:
                    found[(point_id, code, ts)] = {"value": value}
        return found

    def _mass(self, connection: Connection, days: Sequence[dict[str, Any]]) -> list[Sample]:
        samples = []
        points = self.registry.points
        zone = local_zone()
        for row in days:
            code = row["parameter_code"]
            if not code.endswith("-Cou") or row["value"] is None:
                continue
            point = points.get(row["point_id"])
            if point is None or point.outlet_id is None:
                continue
            base = code[: -len("-Cou")]
            info = self._limit(point, base, row["ts"])
            if info is None:
                continue
            subject = Subject(point.id, None, point.enterprise_id, point.region_code, base)
            if info.daily_mass_kg is not None:
                judgement = rules.mass_overrun(row["value"], info.daily_mass_kg, "daily")
                # A partial day can prove an overrun but not its absence.
                if judgement.active or row["valid"]:
                    samples.append(
                        Sample(
                            AlarmKind.MASS_OVERRUN,
                            f"mass_daily:{point.id}:{base}",
                            row["ts"],
                            DAY,
                            judgement,
                            subject,
                        )
                    )
            if info.annual_mass_kg is not None:
                local = row["ts"].astimezone(zone)
                year = local.year
                sums = self._annual_sums(connection, point.id, code, year)
                sums[row["ts"]] = row["value"]
                total = sum(sums.values())
                year_start = dt.datetime(year, 1, 1, tzinfo=zone).astimezone(dt.UTC)
                judgement = rules.mass_overrun(total, info.annual_mass_kg, f"{year}")
                samples.append(
                    Sample(
                        AlarmKind.MASS_OVERRUN,
                        f"mass_annual:{point.id}:{base}:{year}",
                        year_start,
                        dt.timedelta(days=365),
                        judgement,
                        subject,
                    )
                )
        return samples

    def _annual_sums(
        self, connection: Connection, point_id: int, code: str, year: int
    ) -> dict[dt.datetime, float]:
        key = (point_id, code, year)
        if key not in self._annual:
            zone = local_zone()
            start = dt.datetime(year, 1, 1, tzinfo=zone).astimezone(dt.UTC)
            end = dt.datetime(year + 1, 1, 1, tzinfo=zone).astimezone(dt.UTC)
            query = select(rollups.c.ts, rollups.c.value).where(
                rollups.c.point_id == point_id,
                rollups.c.parameter_code == code,
                rollups.c.period == "day",
                rollups.c.ts >= start,
                rollups.c.ts < end,
            )
            self._annual[key] = {
                ts: value for ts, value in connection.execute(query) if value is not None
            }
        return self._annual[key]

    # --- ambient air -------------------------------------------------------------------

    def _ambient(
        self,
        hours: Sequence[dict[str, Any]],
        days: Sequence[dict[str, Any]],
        aqi: Sequence[dict[str, Any]],
    ) -> list[Sample]:
        points = self.registry.points
        grade = self.settings.ambient_grade
        samples = []
        for rows, period, span in ((hours, "hour", HOUR), (days, "day", DAY)):
            for row in rows:
                point = points.get(row["point_id"])
                if point is None or not point.ambient_air or not row["valid"]:
                    continue
                if row["value"] is None:
                    continue
                judgement = rules.ambient_exceedance(
                    row["parameter_code"], row["value"], period, grade
                )
                if judgement is None:
                    continue
                code = row["parameter_code"]
                samples.append(
                    Sample(
                        AlarmKind.AMBIENT_EXCEEDANCE,
                        f"ambient:{point.id}:{code}:{period}",
                        row["ts"],
                        span,
                        judgement,
                        Subject(point.id, point.site_id, None, point.region_code, code),
                    )
                )
        threshold = self.settings.aqi_alarm_threshold
        for row in aqi:
            if row["period"] != "hour":
                continue
            point = points.get(row["point_id"])
            if point is None:
                continue
            aqi_judgement = rules.aqi_category(row["aqi"], threshold, row["primary_pollutants"])
            if aqi_judgement is None:
                continue
            samples.append(
                Sample(
                    AlarmKind.AQI,
                    f"aqi:{point.id}",
                    row["ts"],
                    HOUR,
                    aqi_judgement,
                    point.subject,
                )
            )
        return samples

    # --- data anomalies ------------------------------------------------------------------

    def _anomalies(self, connection: Connection, hours: Sequence[dict[str, Any]]) -> list[Sample]:
        if not hours or not self.anomaly_hours:
            return []
        longest = max(self.anomaly_hours.values())
        dirty: dict[int, set[dt.datetime]] = defaultdict(set)
        for row in hours:
            dirty[row["point_id"]].add(row["ts"])
        unseen = [point_id for point_id in dirty if point_id not in self._hour_flags]
        if unseen:
            earliest = min(min(dirty[p]) for p in unseen) - longest * HOUR
            self._seed_flags(connection, unseen, earliest, max(max(dirty[p]) for p in unseen))
        for row in hours:
            self._hour_flags[row["point_id"]].setdefault(row["ts"], {})[row["parameter_code"]] = (
                row["flags"]
            )
        samples = []
        for point_id, touched in dirty.items():
            point = self.registry.points.get(point_id)
            if point is None:
                continue
            latest = max(max(touched), self._latest_hour.get(point_id, max(touched)))
            self._latest_hour[point_id] = latest
            flags = self._hour_flags[point_id]
            judged_until = self._judged_until.get(point_id)
            to_judge = {h for h in touched if h < latest}
            to_judge |= {
                h for h in flags if h < latest and (judged_until is None or h > judged_until)
            }
            for hour in sorted(to_judge):
                samples += self._judge_anomalies(point, hour, flags)
            self._judged_until[point_id] = latest - HOUR
            horizon = latest - (longest + 2) * HOUR
            for old in [h for h in flags if h < horizon]:
                del flags[old]
        return samples

    def _seed_flags(
        self, connection: Connection, point_ids: list[int], first: dt.datetime, last: dt.datetime
    ) -> None:
        for point_id in point_ids:
            self._hour_flags[point_id] = {}
        for start in range(0, len(point_ids), _CHUNK):
            chunk = point_ids[start : start + _CHUNK]
            query = select(
                rollups.c.point_id, rollups.c.parameter_code, rollups.c.ts, rollups.c.flags
            ).where(
                rollups.c.period == "hour",
                rollups.c.ts >= first,
                rollups.c.ts <= last,
                rollups.c.point_id.in_(chunk),
            )
            for point_id, code, ts, flags in connection.execute(query):
                self._hour_flags[point_id].setdefault(ts, {})[code] = flags

    def _judge_anomalies(
        self, point: PointContext, hour: dt.datetime, flags: dict[dt.datetime, dict[str, int]]
    ) -> list[Sample]:
        samples = []
        for anomaly, needed in self.anomaly_hours.items():
            bit = rules.ANOMALY_BITS[anomaly]
            window = [hour - (needed - 1 - i) * HOUR for i in range(needed)]
            per_hour = [reduce(or_, flags.get(h, {}).values(), 0) for h in window]
            current = per_hour[-1]
            if rules.anomaly_persists(per_hour, bit, needed):
                series = sorted(code for code, f in flags.get(hour, {}).items() if f & bit)
                judgement = Judgement(
                    active=True,
                    severity="warning",
                    evidence={"anomaly": anomaly.value, "hours": needed, "series": series},
                    summary=rules.anomaly_summary(anomaly, needed, series),
                )
            elif not current & bit and hour in flags:
                judgement = Judgement(active=False)
            else:
                continue
            samples.append(
                Sample(
                    AlarmKind.DATA_ANOMALY,
                    f"anomaly:{point.id}:{anomaly.value}",
                    hour,
                    HOUR,
                    judgement,
                    point.subject,
                )
            )
        return samples

    # --- heavy pollution -----------------------------------------------------------------

    def _heavy_pollution(
        self, connection: Connection, aqi: Sequence[dict[str, Any]]
    ) -> list[Sample]:
        dirty: dict[str, set[dt.datetime]] = defaultdict(set)
        for row in aqi:
            if row["period"] != "day":
                continue
            city = self.registry.city_of_point.get(row["point_id"])
            if city:
                dirty[city].add(row["ts"])
        samples = []
        for city, wanted_days in dirty.items():
            series = self.city_daily_aqi(
                connection,
                self.registry.city_stations.get(city, []),
                min(wanted_days) - HEAVY_POLLUTION_LOOKBACK_DAYS * DAY,
                max(wanted_days),
            )
            for day in sorted(wanted_days):
                judgement = self._judge_city_day(city, day, series)
                if judgement is not None:
                    samples.append(
                        Sample(
                            AlarmKind.HEAVY_POLLUTION,
                            f"heavy_pollution:{city}",
                            day,
                            DAY,
                            judgement,
                            Subject(region_code=city),
                        )
                    )
        return samples

    def _judge_city_day(
        self, city: str, day: dt.datetime, series: dict[dt.datetime, float]
    ) -> Judgement | None:
        today = series.get(day, math.nan)
        history: list[float] = []
        moment = day
        while moment in series and len(history) < HEAVY_POLLUTION_LOOKBACK_DAYS:
            history.append(series[moment])
            moment = previous_local_day(moment)
        history.reverse()
        forecast = list(self.forecast(city, day)) if self.forecast else []
        level = rules.heavy_pollution_level(history)
        if forecast:
            level = max(
                (lv for lv in (level, rules.heavy_pollution_level(history + forecast)) if lv),
                default=None,
            )
        if level is not None:
            run = []
            for value in reversed(history):
                if math.isnan(value) or value <= 200:
                    break
                run.append(int(value))
            run.reverse()
            return Judgement(
                active=True,
                severity=level.name.lower(),
                evidence={
                    "aqi": int(today) if not math.isnan(today) else None,
                    "level": level.name.lower(),
                    "run_days": len(run),
                    "run_aqi": run,
                    "forecast": forecast,
                },
                summary=(
                    f"{level.label_zh} ({level.name.lower()}): city daily AQI > 200 for "
                    f"{len(run)} days ({', '.join(map(str, run))})"
                ),
            )
        if not math.isnan(today) and today <= 200:
            return Judgement(active=False)
        return None

    @staticmethod
    def city_daily_aqi(
        connection: Connection, stations: Sequence[int], first: dt.datetime, last: dt.datetime
    ) -> dict[dt.datetime, float]:
        """A city's daily AQI (HJ 633-2012 §5: from the mean of its stations' daily
        concentrations of each pollutant), by local day start."""
        if not stations:
            return {}
        codes = list(DAILY_CODES)
        sums: dict[dt.datetime, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for start in range(0, len(stations), _CHUNK):
            query = select(rollups.c.ts, rollups.c.parameter_code, rollups.c.value).where(
                rollups.c.point_id.in_(list(stations)[start : start + _CHUNK]),
                rollups.c.period == "day",
                rollups.c.parameter_code.in_(codes),
                rollups.c.valid.is_(True),
                rollups.c.ts >= first,
                rollups.c.ts <= last,
            )
            for ts, code, value in connection.execute(query):
                if value is not None:
                    sums[ts][code].append(value)
        if not sums:
            return {}
        ordered = sorted(sums)
        result = group_aqi([sums[day] for day in ordered], "day")
        return {day: float(value) for day, value in zip(ordered, result.aqi, strict=True)}

    # --- offline -----------------------------------------------------------------------

    def _back_online(
        self, connection: Connection, point_ids: set[int], now: dt.datetime
    ) -> list[Sample]:
        if not point_ids:
            return []
        offline = connection.execute(
            select(alarms.c.point_id).where(
                alarms.c.kind == AlarmKind.OFFLINE.value,
                alarms.c.status != AlarmStatus.CLOSED.value,
            )
        ).scalars()
        return [
            Sample(
                AlarmKind.OFFLINE,
                f"offline:{point_id}",
                now,
                dt.timedelta(0),
                Judgement(active=False),
                Subject(point_id),
            )
            for point_id in set(offline) & point_ids
        ]
