"""The measurement format shared by the MQTT, HTTP and CSV doors, and the step that turns
a measurement into a stored observation (identify the point, map the parameter code).

A measurement is JSON (or a CSV row with the same field names)::

    {"point": "P0001", "parameter": "a21026", "ts": "2024-01-15T08:00:00+08:00",
     "value": 12.5, "interval": "min", "flag": "N"}

- ``point`` is the monitoring point's code; ``mn`` (its HJ 212 MN) may be given instead.
- ``parameter`` is an HJ 212-2017 code, an HJ/T 212-2005 legacy code, or either with an
  HJ 212 suffix (``a21026-Cou``).
- ``ts`` is ISO 8601 *with* a UTC offset; a time without one is rejected, never guessed.
- ``interval`` is ``rt`` (default), ``min``, ``hour`` or ``day``; ``flag`` an HJ 212 data
  flag (default ``N``); ``value`` a number or null.

A *message* carries several parameters of one point and time (what a sensor sends at
once; the zero-flow check works per message)::

    {"point": "P0001", "ts": "...", "interval": "min",
     "values": {"a21026": 12.5, "a00000": 3.2}, "flags": {"a21026": "N"}}

A payload is one measurement, one message, or a JSON array of them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine

from ecohub.registry.directory import PointDirectory, PointInfo
from ecohub.registry.parameters import canonical_parameter_code
from ecohub.registry.service import registry_version
from ecohub.timeseries.observations import DATA_FLAGS, INTERVALS, Observation

CSV_FIELDS = ("point", "mn", "parameter", "ts", "value", "interval", "flag")


class MeasurementError(ValueError):
    """A measurement that cannot be stored, with the reason."""

    def __init__(self, reason_code: str, reason: str) -> None:
        super().__init__(reason)
        self.reason_code = reason_code
        self.reason = reason


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    point: str | None = Field(default=None, max_length=32)
    mn: str | None = Field(default=None, max_length=32)
    ts: dt.datetime
    interval: str = "rt"

    @field_validator("ts")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset, e.g. 2024-01-15T08:00:00+08:00")
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if value not in INTERVALS:
            raise ValueError(f"interval must be one of {sorted(INTERVALS)}")
        return value


def _check_flag(value: str) -> str:
    if value not in DATA_FLAGS:
        raise ValueError(
            f"flag {value!r} is not an HJ 212 data flag ({''.join(sorted(DATA_FLAGS))})"
        )
    return value


def _check_value(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("value must be a finite number or null")
    return value


class MeasurementIn(_Common):
    """One value of one parameter."""

    parameter: str = Field(min_length=1, max_length=16)
    value: float | None
    flag: str = "N"

    _flag = field_validator("flag")(_check_flag)
    _value = field_validator("value")(_check_value)


class MessageIn(_Common):
    """Several parameters of one point at one time."""

    values: dict[str, float | None] = Field(min_length=1)
    flags: dict[str, str] = Field(default_factory=dict)

    @field_validator("values")
    @classmethod
    def _finite(cls, values: dict[str, float | None]) -> dict[str, float | None]:
        for code, value in values.items():
            if value is not None and not math.isfinite(value):
                raise ValueError(f"value of {code} must be a finite number or null")
        return values

    @field_validator("flags")
    @classmethod
    def _flags(cls, flags: dict[str, str]) -> dict[str, str]:
        for flag in flags.values():
            _check_flag(flag)
        return flags


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "payload"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_json(text: str) -> Any:
    """A JSON text as data; :class:`MeasurementError` (``bad_json``) with the line and
    column when it is not JSON, or when it nests deeper than the parser's recursion
    limit (a document nested 100,000 deep)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise MeasurementError(
            "bad_json", f"not JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise MeasurementError("bad_json", "JSON nested too deeply") from None


def parse_item(item: Any, default_point: str | None = None) -> list[MeasurementIn]:
    """One JSON object (a measurement or a message) as measurements; raises
    :class:`MeasurementError` with the reason."""
    if not isinstance(item, dict):
        raise MeasurementError("bad_payload", "each measurement must be a JSON object")
    if default_point and not item.get("point") and not item.get("mn"):
        item = {**item, "point": default_point}
    try:
        if "values" in item:
            message = MessageIn.model_validate(item)
            return [
                MeasurementIn(
                    point=message.point,
                    mn=message.mn,
                    ts=message.ts,
                    interval=message.interval,
                    parameter=code,
                    value=value,
                    flag=message.flags.get(code, "N"),
                )
                for code, value in message.values.items()
            ]
        return [MeasurementIn.model_validate(item)]
    except ValidationError as error:
        raise MeasurementError("bad_field", _describe(error)) from None


def parse_items(payload: Any) -> Iterator[Any]:
    """The JSON objects of a payload (one object or an array of them)."""
    if isinstance(payload, list):
        yield from payload
    else:
        yield payload


class Resolver:
    """Turns measurements into observations: finds the point by code or MN in the point
    directory and maps the parameter code (legacy codes included) onto the registry's
    table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.directory = PointDirectory(engine)
        self._version = -1  # of the registry the directory was read from
        self._checked = 0.0
        self.refresh()

    def refresh(self) -> None:
        version = registry_version(self.engine)
        self.directory.refresh()
        self._version = version

    def _refresh_if_changed(self) -> None:
        """Re-read the directory if the registry changed since (checked at most ten
        times a second: a payload of a hundred thousand unknown points cost as many
        directory reads)."""
        now = time.monotonic()
        if now - self._checked < 0.1:
            return
        self._checked = now
        if registry_version(self.engine) != self._version:
            self.refresh()

    def point(self, measurement: MeasurementIn) -> PointInfo:
        for attempt in range(2):
            if measurement.point:
                found = self.directory.by_code.get(measurement.point)
            elif measurement.mn:
                found = self.directory.by_mn.get(measurement.mn)
            else:
                raise MeasurementError("bad_field", "give the monitoring point's code or MN")
            if found is not None:
                return found
            if attempt == 0:
                self._refresh_if_changed()  # registered since we last looked?
        name = f"point {measurement.point}" if measurement.point else f"MN {measurement.mn}"
        raise MeasurementError("unknown_point", f"{name} is not a registered monitoring point")

    @staticmethod
    def parameter(code: str) -> str:
        base, dash, suffix = code.partition("-")
        canonical = canonical_parameter_code(base)
        if canonical is None:
            raise MeasurementError(
                "unknown_parameter", f"parameter {base!r} is not in the HJ 212 code table"
            )
        return canonical + dash + suffix

    def observation(self, measurement: MeasurementIn, source: str) -> tuple[Observation, PointInfo]:
        point = self.point(measurement)
        return (
            Observation(
                point.id,
                self.parameter(measurement.parameter),
                measurement.interval,
                measurement.ts.astimezone(dt.UTC),
                measurement.value,
                measurement.flag,
                0,
                source,
            ),
            point,
        )


def csv_row_item(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row as a measurement object: empty cells are absent, ``value`` a number."""
    item: dict[str, Any] = {
        key: value for key, value in row.items() if key and value not in (None, "")
    }
    if None in row:  # more cells than header columns: fails validation
        return {"_extra": row.get(None)}  # type: ignore[call-overload]
    raw_value = item.get("value")
    if raw_value is None:
        item["value"] = None
    else:
        try:
            item["value"] = float(raw_value)
        except ValueError:
            item["value"] = raw_value  # validation names the field
    return item
