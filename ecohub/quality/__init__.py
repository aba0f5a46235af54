"""Quality control of observations, as SaQC does it: each check is a small function that
returns a boolean mask of the values it flags and never edits a value; the flags are
stored with each observation as a bit set whose bits are named after the checks."""

from ecohub.quality.flags import (
    INFORMATIONAL,
    QualityFlag,
    describe,
    is_valid,
)
from ecohub.quality.thresholds import Thresholds, thresholds_for

__all__ = [
    "INFORMATIONAL",
    "QualityFlag",
    "Thresholds",
    "describe",
    "is_valid",
    "thresholds_for",
]
