"""The floors of the house hold: no import from a lower floor to a higher one, no import
cycle between packages, and the dependency table of docs/architecture.md is the code's.

The floors and the table are read from docs/architecture.md itself, so the document a
newcomer reads is the rule the code is held to. Imports inside functions count as much as
those at the top of a module. Migration scripts are exempt from the floors: each is a
frozen script that may load the reference data of the floor owning it (0002 loads the
parameter table of the registry).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ecohub"
DOC = ROOT / "docs" / "architecture.md"
GROUND = "ground"


def _table(heading: str) -> list[list[str]]:
    """The rows of the first Markdown table after ``heading`` in the document."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif rows:
            break
    return rows[1:]  # without the header


def _names(cell: str) -> list[str]:
    return [name.strip("` ") for name in cell.split(",") if name.strip("` —-")]


def floors() -> dict[str, tuple[int, str]]:
    """Top-level unit of ``ecohub`` → (floor number, floor name), from the document."""
    found = {}
    for number, (floor, units, *_rest) in enumerate(_table("## Floors"), start=1):
        for unit in _names(units):
            found[unit] = (number, floor.lower())
    return found


def documented_dependencies() -> dict[str, set[str]]:
    """Package → the packages it imports (above the ground floor), from the document."""
    return {
        package.strip("` "): set(_names(depends))
        for package, _what, depends in _table("## Packages")
    }


def _unit(module: str) -> str:
    """``ecohub.alarms.lifecycle`` → ``alarms``; ``ecohub.app`` → ``app``."""
    return module.split(".")[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Every ecohub module → the ecohub modules it imports (anywhere in its code)."""
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("ecohub."))
            elif (
                isinstance(node, ast.ImportFrom)
                and node.level == 0
                and node.module
                and node.module.split(".")[0] == "ecohub"
            ):
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[module] = targets
    known = set(found)
    return {module: {t for t in targets if t in known} for module, targets in found.items()}


def _exempt(module: str) -> bool:
    return ".migrations.versions." in module


def test_every_unit_of_the_package_is_on_a_floor() -> None:
    units = {_unit(module) for module in imports() if module != "ecohub"}
    missing = sorted(units - set(floors()))
    assert not missing, f"add {missing} to the floors of docs/architecture.md"


def test_no_import_from_a_lower_floor_to_a_higher_one() -> None:
    floor_of = floors()
    upward = []
    for module, targets in imports().items():
        if module == "ecohub" or _exempt(module):
            continue
        here = floor_of[_unit(module)]
        for target in targets:
            there = floor_of.get(_unit(target))
            if there is not None and there[0] > here[0]:
                upward.append(f"{module} ({here[1]}) imports {target} ({there[1]})")
    assert not upward, "imports that run upward:\n" + "\n".join(sorted(upward))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def package_graph() -> dict[str, set[str]]:
    """Unit → the other units it imports (migration scripts left out)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports().items():
        if module == "ecohub" or _exempt(module):
            continue
        for target in targets:
            if _unit(target) != _unit(module):
                graph[_unit(module)].add(_unit(target))
    return graph


def test_no_import_cycle_between_packages() -> None:
    assert _cycles(package_graph()) == []


def test_no_import_cycle_between_modules() -> None:
    graph = {m: {t for t in ts if t != m} for m, ts in imports().items() if not _exempt(m)}
    # A package's __init__ importing its own modules is not a cycle worth a rule.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    assert _cycles(graph) == []


def test_the_dependency_table_is_the_codes() -> None:
    floor_of = floors()
    documented = documented_dependencies()
    actual = {
        unit: {t for t in targets if floor_of[t][1] != GROUND}
        for unit, targets in package_graph().items()
    }
    wrong = []
    for unit in sorted(set(documented) | {u for u in actual if floor_of[u][1] != GROUND}):
        if documented.get(unit, set()) != actual.get(unit, set()):
            wrong.append(
                f"{unit}: documented {sorted(documented.get(unit, set()))}, "
                f"imports {sorted(actual.get(unit, set()))}"
            )
    assert not wrong, "fix the table in docs/architecture.md:\n" + "\n".join(wrong)


# A module may be longer, or hold a longer function, when its docstring says why in one
# line starting with "Length:".
LIMIT_REASON = re.compile(r"^Length: \S", re.MULTILINE)


@pytest.mark.parametrize("limit", [600])
def test_no_module_over_600_lines_without_a_reason(limit: int) -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > limit and not LIMIT_REASON.search(docstring):
            long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert not long, "split these modules, or say why in their docstring:\n" + "\n".join(long)


def test_no_function_over_80_lines_without_a_reason() -> None:
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if LIMIT_REASON.search(ast.get_docstring(tree) or ""):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if lines > 80:
                    long.append(f"{path.relative_to(ROOT)}: {node.name} ({lines} lines)")
    assert not long, "split these functions, or say why in their module:\n" + "\n".join(long)


def test_domain_code_never_reads_the_settings() -> None:
    """Settings are passed in at the composition root; the ground floor reads them
    (``clock`` the time zone) and the domain floor never does."""
    floor_of = floors()
    readers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        if module == "ecohub" or floor_of[_unit(module)][1] != "domain":
            continue
        if "get_settings" in path.read_text(encoding="utf-8"):
            readers.append(module)
    assert readers == []
