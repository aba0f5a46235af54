"""Structured log events: one JSON object per line, easy to grep and to ship."""

from __future__ import annotations

import json
import logging
from typing import Any


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with ``fields`` as one JSON line."""
    if logger.isEnabledFor(level):
        logger.log(level, json.dumps({"event": event, **fields}, ensure_ascii=False, default=str))


def configure_logging(level: int = logging.INFO) -> None:
    """Plain message format: the messages are already JSON."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(message)s")
