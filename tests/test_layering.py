"""Imports follow the layers that DESIGN.md draws (its ```layers block): a module of ucd/
imports only from its own layer or below, at the top of a file or inside a function."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "ucd"


def layers(design: str) -> dict[str, int]:
    """Unit (a top-level module or package of ucd/, or 'ucd' itself) -> its layer number."""
    block = re.search(r"```layers\n(.*?)```", design, re.S)
    assert block, "DESIGN.md has no ```layers block"
    out: dict[str, int] = {}
    for line in block.group(1).strip().splitlines():
        number, rest = line.split(" ", 1)
        for unit in rest.split(":", 1)[1].split():
            assert unit not in out, f"{unit} is in two layers of DESIGN.md"
            out[unit] = int(number)
    return out


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


def ucd_imports(source: str, module: str) -> list[tuple[int, str]]:
    """(line, imported ucd module) of every import in `source`, function bodies included."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = module.split(".")[: -node.level] if not module.endswith("__init__") else []
                target = ".".join([*base, node.module or ""]).strip(".")
            else:
                target = node.module or ""
            # `from ucd import training` imports the unit `training`
            names = [f"{target}.{a.name}" for a in node.names] if target == "ucd" else [target]
            out += [(node.lineno, t) for t in names]
    return [(n, t) for n, t in out if t == "ucd" or t.startswith("ucd.")]


def violations(files: dict[str, str], table: dict[str, int]) -> list[str]:
    """Every import of `files` (module -> source) that points to a higher layer."""
    bad = []
    for module, source in files.items():
        here = unit_of(module)
        for line, target in ucd_imports(source, module):
            there = unit_of(target)
            if table[there] > table[here]:
                bad.append(f"{module}:{line} imports {target} (layer {table[there]} "
                           f"{there}) from layer {table[here]} {here}")
    return bad


def ucd_files() -> dict[str, str]:
    return {module_name(p): p.read_text() for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_unit_of_ucd_has_a_layer() -> None:
    table = layers((REPO / "DESIGN.md").read_text())
    units = {unit_of(m) for m in ucd_files()}
    assert units - table.keys() == set(), "units of ucd/ that DESIGN.md's layers do not place"
    assert table.keys() - units == set(), "DESIGN.md places units that ucd/ does not have"


def test_no_import_points_up() -> None:
    table = layers((REPO / "DESIGN.md").read_text())
    assert violations(ucd_files(), table) == []


def test_only_entry_points_sit_loose_at_the_top_of_ucd() -> None:
    """The folder tree reads as the layers: a module beside the packages of ucd/ is an entry
    point (the top layer, DESIGN.md's interface); every other unit is a package of its layer."""
    table = layers((REPO / "DESIGN.md").read_text())
    top = max(table.values())
    loose = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert {m for m in loose if table.get(m) != top} == set()


@pytest.mark.parametrize("source, found", [
    ("from ucd.training.engine import train_step\n",
     ["ucd.data.x:1 imports ucd.training.engine"]),
    ("def f():\n    import ucd.cli\n", ["ucd.data.x:2 imports ucd.cli"]),
    ("from ucd import training\n", ["ucd.data.x:1 imports ucd.training"]),
    ("from ucd.training import engine\n", ["ucd.data.x:1 imports ucd.training"]),
    ("from ..training.resume import Preempted\n",
     ["ucd.data.x:1 imports ucd.training.resume"]),
    ("from ucd.facts.config import RunConfig\nfrom ucd.data.tasks import get_task\n", []),
])
def test_an_upward_import_is_found(source: str, found: list[str]) -> None:
    table = {"facts": 0, "data": 1, "training": 5, "cli": 8}
    got = violations({"ucd.data.x": source}, table)
    assert [g.split(" (")[0] for g in got] == found
