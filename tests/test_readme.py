"""The README's first screen and configuration table stay true to the code."""

from __future__ import annotations

import re
from pathlib import Path

from ecohub.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text("utf-8")


def _documented_settings() -> set[str]:
    """Every ``ECOHUB_X`` of the configuration table's first column; ``ECOHUB_SMTP_HOST`` /
    ``_PORT`` means ``ECOHUB_SMTP_PORT``."""
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        full = re.findall(r"`ECOHUB_([A-Z0-9_]+)`", first)
        names.update(full)
        if full:
            stem = full[0].rsplit("_", 1)[0]
            names.update(f"{stem}{short}" for short in re.findall(r"`(_[A-Z0-9_]+)`", first))
    return names


def test_every_setting_is_in_the_readme_and_no_other() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    documented = _documented_settings()
    assert sorted(fields - documented) == [], "settings missing from README's table"
    assert sorted(documented - fields) == [], "README's table names settings that do not exist"


def test_the_readme_gives_exactly_two_setup_commands() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert "make test" in ci, ".ci/run must call the README's test command"
