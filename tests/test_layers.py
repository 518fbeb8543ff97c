"""Three layers, arrows down only: core <- domains <- application.

core (settings, the warehouse connection, the source contract) imports nothing of the project's own; the domains
import the core and, where stated, a domain below them; the application (`scorehouse`: CLI, pipeline) may import
anything. First-party imports sit at the top of their modules, so this reading of the source sees them all.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPLICATION = "scorehouse"
# package -> the first-party packages it may import (besides itself)
ALLOWED = {
    "core": set(),
    "ingest": {"core"},
    "simulator": {"core"},
    "ml": {"core"},
    "scoring": {"core", "ml"},
    "expectations": {"core", "ml"},
    APPLICATION: {"core", "ingest", "simulator", "ml", "scoring", "expectations"},
}
FIRST_PARTY = set(ALLOWED)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level package, imported at module level?) for every absolute import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(name.split(".")[0], id(node) in top_level) for name in names]
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_module_imports_a_package_above_its_layer(package):
    wrong, nested = [], []
    for path in _modules(package):
        for name, at_top in _imports(path):
            if name in FIRST_PARTY and name != package:
                if name not in ALLOWED[package]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
                if not at_top:
                    nested.append(f"{path.relative_to(ROOT)} imports {name} inside a function")
    assert not wrong, "imports across the layers: " + "; ".join(wrong)
    assert not nested, "first-party imports belong at the top of the module: " + "; ".join(nested)


def test_the_layer_rules_see_every_package():
    """A new top-level package must be given its layer here before it can be imported by anything."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(ALLOWED)


@pytest.mark.parametrize("package", ["ml", "scoring", "expectations", "ingest", "core"])
def test_a_domain_loads_without_the_simulator_or_the_application(package):
    """Every module of the package, imported in a fresh interpreter, loads neither the simulator nor the CLI."""
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in _modules(package)]
    modules = [m.removesuffix(".__init__") for m in modules]
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('simulator', 'scorehouse'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    assert len(modules) >= 2
