"""Input records of the registry, validated (Pydantic) before anything touches the store.

Each record names its references by natural keys (region code, credit code, outlet code,
site code), so an import file never needs database ids.
"""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ecohub.registry.models import OutletKind, RegionLevel, SiteKind, SiteStatus, WaterBody
from ecohub.registry.source_code import (
    SOURCE_CODE_LENGTH,
    validate_outlet_code,
    validate_source_code,
)
from ecohub.registry.uscc import validate_uscc

_REGION_CODE = re.compile(r"^\d{6}$")
# Codes of sites, outlets, points and permits: letters (Latin or Chinese) and digits, then
# also - _ . / ( ): never a leading = + - @, which a spreadsheet would run as a formula.
CODE_PATTERN = r"^[0-9A-Za-z\u4e00-\u9fff][0-9A-Za-z\u4e00-\u9fff_.\-/()]*$"
# An HJ 212 MN: letters and digits (6.3.3: up to 24 characters; vendors use up to 32).
MN_PATTERN = r"^[0-9A-Za-z_\-]+$"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _check_region_code(code: str | None) -> str | None:
    if code is None or code == "":
        return None
    if not _REGION_CODE.match(code):
        raise ValueError(f"region code {code!r} is not a six-digit GB/T 2260 code")
    return code


class _Located(_Record):
    longitude: float | None = Field(default=None, ge=-180, le=180)
    latitude: float | None = Field(default=None, ge=-90, le=90)


class RegionIn(_Record):
    code: str
    name: str = Field(min_length=1)
    parent_code: str | None = None
    level: RegionLevel | None = None

    _codes = field_validator("code", "parent_code")(_check_region_code)

    @model_validator(mode="after")
    def _not_own_parent(self) -> RegionIn:
        if self.parent_code == self.code:
            raise ValueError(f"region {self.code} cannot be its own parent")
        return self


class SiteIn(_Located):
    code: str = Field(min_length=1, max_length=32, pattern=CODE_PATTERN)
    name: str = Field(min_length=1)
    kind: SiteKind
    region_code: str | None = None
    status: SiteStatus = SiteStatus.ACTIVE
    control_point: bool = False
    basin: str | None = Field(default=None, max_length=100)
    water_body: WaterBody | None = None

    _region = field_validator("region_code")(_check_region_code)


class EnterpriseIn(_Located):
    uscc: str
    name: str = Field(min_length=1)
    region_code: str | None = None
    industry: str | None = None

    _region = field_validator("region_code")(_check_region_code)

    @field_validator("uscc")
    @classmethod
    def _valid_uscc(cls, value: str) -> str:
        return validate_uscc(value)


class OutletIn(_Located):
    """An outlet, its code that of HJ 608-2017 (``DA001``, ``DW001``: D, the element
    letter, a 3-digit sequence), one directory across the platform."""

    enterprise_uscc: str
    code: str = Field(min_length=1, max_length=32, pattern=CODE_PATTERN)
    name: str = Field(min_length=1)
    kind: OutletKind

    @field_validator("enterprise_uscc")
    @classmethod
    def _valid_uscc(cls, value: str) -> str:
        return validate_uscc(value)

    @field_validator("code")
    @classmethod
    def _hj608(cls, value: str) -> str:
        return validate_outlet_code(value)

    @model_validator(mode="after")
    def _element_is_kind(self) -> OutletIn:
        element = {"A": OutletKind.GAS, "W": OutletKind.WATER}.get(self.code[1])
        if element is not None and element != self.kind:
            raise ValueError(
                f"outlet {self.code}: its element letter {self.code[1]} (HJ 608-2017) "
                f"is not a {self.kind.value} outlet"
            )
        return self


class PermitLimitIn(_Record):
    outlet_code: str
    parameter_code: str
    concentration_limit: float = Field(gt=0)
    unit: str = Field(min_length=1)
    annual_mass_limit_kg: float | None = Field(default=None, gt=0)
    daily_mass_limit_kg: float | None = Field(default=None, gt=0)
    reference_o2: float | None = Field(default=None, ge=0, lt=21)


class PermitIn(_Record):
    permit_no: str = Field(min_length=1, max_length=64, pattern=CODE_PATTERN)
    enterprise_uscc: str
    valid_from: dt.date
    valid_to: dt.date
    limits: list[PermitLimitIn] = Field(default_factory=list)

    @field_validator("enterprise_uscc")
    @classmethod
    def _valid_uscc(cls, value: str) -> str:
        return validate_uscc(value)

    @model_validator(mode="after")
    def _validity(self) -> PermitIn:
        # A number of the national system's form (HJ 608-2017, 22 characters) is checked
        # like the credit code and must be the enterprise's own; an older local number of
        # another length is kept as written.
        if len(self.permit_no) == SOURCE_CODE_LENGTH:
            self.permit_no = validate_source_code(self.permit_no)
            main = self.permit_no[:18]
            if not main.startswith("H9") and main != self.enterprise_uscc:
                raise ValueError(
                    f"permit {self.permit_no}: its first 18 characters are not the "
                    f"enterprise's credit code {self.enterprise_uscc} (HJ 608-2017)"
                )
        if self.valid_to < self.valid_from:
            raise ValueError(
                f"permit {self.permit_no}: valid_to {self.valid_to} is before "
                f"valid_from {self.valid_from}"
            )
        return self


class PointIn(_Record):
    """A monitoring point measuring either an outlet (enterprise + outlet code) or a site."""

    code: str = Field(min_length=1, max_length=32, pattern=CODE_PATTERN)
    name: str = Field(min_length=1)
    mn: str | None = Field(default=None, max_length=32, pattern=MN_PATTERN)
    password: str | None = Field(default=None, max_length=64)
    enterprise_uscc: str | None = None
    outlet_code: str | None = None
    site_code: str | None = None
    interval_seconds: int = Field(default=60, gt=0)
    minute_interval_seconds: int = Field(default=600, gt=0)
    crc_tolerant: bool = False

    @field_validator("enterprise_uscc")
    @classmethod
    def _valid_uscc(cls, value: str | None) -> str | None:
        return validate_uscc(value) if value else None

    @model_validator(mode="after")
    def _measures_one_thing(self) -> PointIn:
        has_outlet = bool(self.enterprise_uscc and self.outlet_code)
        if has_outlet == bool(self.site_code):
            raise ValueError(
                f"point {self.code}: give either enterprise_uscc + outlet_code or site_code"
            )
        return self
