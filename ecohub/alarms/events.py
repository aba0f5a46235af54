"""What the alarm rules produce and the lifecycle consumes: the subject of an alarm, one
judgement of one condition for one period (a sample), and a lifecycle change worth
telling subscribers about (an event)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ecohub.alarms.rules import Judgement
from ecohub.alarms.tables import AlarmKind


@dataclass(frozen=True)
class Subject:
    """What an alarm is about."""

    point_id: int | None = None
    site_id: int | None = None
    enterprise_id: int | None = None
    region_code: str | None = None
    parameter_code: str | None = None


@dataclass(frozen=True)
class Sample:
    """One judgement of one condition for the period starting at ``at``."""

    kind: AlarmKind
    key: str
    at: dt.datetime
    period: dt.timedelta
    judgement: Judgement
    subject: Subject


@dataclass(frozen=True)
class Event:
    """A lifecycle change worth telling subscribers about."""

    alarm_id: int
    action: str  # opened, escalated, closed
