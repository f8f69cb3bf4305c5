"""The import graph of ``cytodask/``: families keep to public names of each other; core imports no family.

Every module is parsed with :mod:`ast` (nothing is imported, so the check
sees imports inside functions and under ``TYPE_CHECKING`` too). A *group* is
the first subpackage below ``cytodask`` (``activity``, ``differential``,
``core``, … and any future one); top-level modules (``cli.py``) form a group
of their own. Rules:

- no module imports a private name of another group: a module or a name with
  a leading underscore (``cytodask.differential._driver``,
  ``from cytodask.aggregation.pseudobulk import _block``);
- ``core`` imports no other group (families build on core, never the reverse).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import cytodask

PACKAGE_DIR = Path(cytodask.__file__).parent
CORE = "core"


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import statement of a module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield base, alias.name, node.lineno


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def layout_violations(root: Path, package: str) -> list[str]:
    """Imports under ``root`` (the directory of ``package``) that break the layout rules, one line each."""
    groups = {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root, package)
        src_parts = module.split(".")
        src = src_parts[1] if len(src_parts) > 1 and src_parts[1] in groups else package
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for target, name, line in _imports(tree, module, path.name == "__init__.py"):
            parts = target.split(".")
            if parts[0] != package:
                continue
            if len(parts) == 1 and name in groups:  # from cytodask import differential
                parts, name = [package, name], None
            if len(parts) < 2 or parts[1] not in groups or parts[1] == src:
                continue
            where = f"{path.relative_to(root.parent)}:{line}"
            shown = target + (f" import {name}" if name else "")
            if src == CORE:
                found.append(f"{where}: core imports the family {parts[1]!r} ({shown})")
            elif any(_is_private(p) for p in parts[2:]) or (name is not None and _is_private(name)):
                found.append(f"{where}: {src!r} imports a private name of {parts[1]!r} ({shown})")
    return found


def test_cytodask_import_graph_keeps_the_layout():
    violations = layout_violations(PACKAGE_DIR, "cytodask")
    assert not violations, "import-graph rules broken (use the family's public names, or move shared code to core):\n" + "\n".join(violations)


@pytest.mark.parametrize("family", ["correlation", "export"])
def test_shared_statistics_come_from_core_not_differential(family):
    """Correlation and the export use core's numerics and tables, not the differential family."""
    found = []
    for path in sorted((PACKAGE_DIR / family).rglob("*.py")):
        module = _module_name(path, PACKAGE_DIR, "cytodask")
        for target, name, line in _imports(ast.parse(path.read_text(encoding="utf-8")), module,
                                           path.name == "__init__.py"):
            if target.startswith("cytodask.differential") or (target == "cytodask" and name == "differential"):
                found.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {target}")
    assert not found, "import these from cytodask.core (xp, stats, tables) instead:\n" + "\n".join(found)


def _tree(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "pkg"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return pkg


CLEAN = {
    "__init__.py": "",
    "cli.py": "from pkg.fam_a import public\n",
    "core/__init__.py": "",
    "core/_helpers.py": "X = 1\n",
    "core/xp.py": "from pkg.core._helpers import X\nimport numpy\n",
    "fam_a/__init__.py": "from pkg.fam_a.api import public\n",
    "fam_a/_impl.py": "from pkg.core.xp import X\n",
    "fam_a/api.py": "from pkg.fam_a._impl import X as public\nfrom ._impl import X\n",
    "fam_b/__init__.py": "",
    "fam_b/stage.py": "from pkg.fam_a import public\nfrom pkg.fam_a.api import public as p\n",
}


def test_checker_accepts_a_clean_tree(tmp_path):
    assert layout_violations(_tree(tmp_path, CLEAN), "pkg") == []


@pytest.mark.parametrize(
    ("rel", "source", "message"),
    [
        ("fam_b/stage.py", "from pkg.fam_a._impl import X\n", "'fam_b' imports a private name of 'fam_a'"),
        ("fam_b/stage.py", "from pkg.fam_a import _impl\n", "'fam_b' imports a private name of 'fam_a'"),
        ("fam_b/stage.py", "def f():\n    import pkg.fam_a._impl as m\n", "'fam_b' imports a private name of 'fam_a'"),
        ("fam_b/stage.py", "from pkg.fam_a.api import _hidden\n", "'fam_b' imports a private name of 'fam_a'"),
        ("fam_b/stage.py", "from ..fam_a._impl import X\n", "'fam_b' imports a private name of 'fam_a'"),
        ("fam_new/__init__.py", "from pkg.fam_b.stage import _x\n", "'fam_new' imports a private name of 'fam_b'"),
        ("cli.py", "from pkg.fam_a._impl import X\n", "'pkg' imports a private name of 'fam_a'"),
        ("core/xp.py", "from pkg.fam_a import public\n", "core imports the family 'fam_a'"),
        ("core/xp.py", "from pkg import fam_b\n", "core imports the family 'fam_b'"),
    ],
)
def test_checker_flags_a_broken_import(tmp_path, rel, source, message):
    files = {**CLEAN, rel: CLEAN.get(rel, "") + source}
    found = layout_violations(_tree(tmp_path, files), "pkg")
    assert len(found) == 1 and message in found[0] and found[0].startswith(f"pkg/{rel}:"), found
