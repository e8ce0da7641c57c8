"""Every import points down: ``tenants`` (the ground floor) imports nothing from ``booking`` or
``emr``, and ``booking`` imports nothing from ``emr``. ``emr`` and ``config`` may import anything.

The test reads the source (``ast``), so an import inside a function counts as much as one at the
top of a module. Migrations are left out: a migration names the callables its fields used when it
was written.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("tenants", "booking", "emr", "config")
# app -> the apps it must not import
FORBIDDEN = {"tenants": {"booking", "emr"}, "booking": {"emr"}}


def _modules(app: str) -> list[Path]:
    return sorted(path for path in (ROOT / app).rglob("*.py") if "migrations" not in path.relative_to(ROOT).parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, imported module)`` for every import statement in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return found


def upward_imports(app: str) -> list[str]:
    forbidden = FORBIDDEN.get(app, set())
    problems = []
    for path in _modules(app):
        for line, module in imports_of(path):
            if module.split(".")[0] in forbidden:
                problems.append(f"{path.relative_to(ROOT)}:{line} ({_module_name(path)}) imports {module}")
    return problems


@pytest.mark.parametrize("app", APPS)
def test_no_module_imports_upward(app):
    problems = upward_imports(app)
    allowed = ", ".join(sorted(set(APPS) - FORBIDDEN.get(app, set()) - {app})) or "nothing above it"
    assert not problems, f"{app} may not import {', '.join(sorted(FORBIDDEN.get(app, ())))} (it may import {allowed}):\n  " + "\n  ".join(
        problems
    )


def test_the_walk_sees_every_kind_of_import(tmp_path, monkeypatch):
    """The checker itself: plain, from, relative and function-level imports are all reported."""
    package = tmp_path / "tenants" / "sub"
    package.mkdir(parents=True)
    (tmp_path / "tenants" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text(
        "import booking.models\n"
        "from emr import services\n"
        "from . import sibling\n"
        "from .. import models\n"
        "def later():\n"
        "    from emr.models import Job\n"
    )
    migrations = tmp_path / "tenants" / "migrations"
    migrations.mkdir()
    (migrations / "0001_initial.py").write_text("import booking.validators\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)

    assert imports_of(package / "mod.py") == [
        (1, "booking.models"),
        (2, "emr"),
        (3, "tenants.sub"),
        (4, "tenants"),
        (6, "emr.models"),
    ]
    assert upward_imports("tenants") == [
        "tenants/sub/mod.py:1 (tenants.sub.mod) imports booking.models",
        "tenants/sub/mod.py:2 (tenants.sub.mod) imports emr",
        "tenants/sub/mod.py:6 (tenants.sub.mod) imports emr.models",
    ]
