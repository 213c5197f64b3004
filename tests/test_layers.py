"""The layers point one way (docs/architecture.md): checked on the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mer"
ENTRY_POINTS = {
    "mer.train",
    "mer.tune",
    "mer.score",
    "mer.evaluate",
    "mer.export",
    "mer.baseline",
    "mer.study",
    "mer.prepare",
    "mer.api",
}
LIBRARY = ("mer.data", "mer.models", "mer.losses", "mer.engine", "mer.scoring")
# (package, packages it must not import)
FORBIDDEN = {
    "mer.data": ("mer.models", "mer.losses", "mer.engine", "mer.scoring"),
    "mer.models": ("mer.data", "mer.losses", "mer.engine", "mer.scoring"),
    "mer.losses": ("mer.data", "mer.models", "mer.engine", "mer.scoring"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "mer" or name.startswith("mer.")}


MODULES = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(LIBRARY)))
def test_library_code_never_imports_an_entry_point(module):
    assert not {name for name in MODULES[module] if name in ENTRY_POINTS or name.rsplit(".", 1)[0] in ENTRY_POINTS}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(package):
    wrong = {
        (module, name)
        for module, names in MODULES.items()
        if module == package or module.startswith(package + ".")
        for name in names
        if name.startswith(FORBIDDEN[package])
    }
    assert not wrong
