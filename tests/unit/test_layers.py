"""The import layers docs/architecture.md draws are the code's: read from the source with ast."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "payment_service"
# The picture in docs/architecture.md: each layer imports only from the layers below it.
LAYERS = [
    {"core", "config"},
    {"cards"},
    {"schemas", "kafka", "ops"},
    {"http", "streams", "storage", "bank", "webhooks"},
    {"app"},
]
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}


@cache
def _imports() -> dict[str, set[str]]:
    """Subpackage -> the other subpackages of ours its modules import."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2:
            continue
        here = found.setdefault(parts[0], set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                module = name.split(".")
                ours = module[0] == "payment_service" and len(module) > 1
                if ours and module[1] in LAYER_OF and module[1] != parts[0]:
                    here.add(module[1])
    return found


def test_every_subpackage_has_its_place_in_the_picture() -> None:
    assert set(_imports()) == set(LAYER_OF)


@pytest.mark.parametrize("package", sorted(LAYER_OF))
def test_a_package_imports_only_from_the_layers_below(package: str) -> None:
    upward = {other for other in _imports()[package] if LAYER_OF[other] >= LAYER_OF[package]}
    assert upward == set(), f"{package} imports {sorted(upward)} from its own layer or above"
