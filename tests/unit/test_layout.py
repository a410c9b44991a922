"""The layout the brief fixes, and one pytest trap: test modules must have unique names.

The test folders have no `__init__.py`, so pytest imports every test module by its
file name; two files with the same name in different folders stop the whole run
at collection.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_test_module_names_are_unique():
    names = Counter(p.name for p in (ROOT / "tests").rglob("*.py") if p.name != "conftest.py")
    assert [name for name, count in names.items() if count > 1] == []


def test_fixed_top_level_layout_is_present():
    for path in ("pyproject.toml", "README.md", "Makefile", "services", "shared", "deploy", "tests"):
        assert (ROOT / path).exists(), path
    for service in ("gateway", "workflow_router", "queue_dispatcher", "statistics", "events"):
        assert (ROOT / "services" / service / "__main__.py").exists(), service
