"""The layers point one way: cli -> agents/client/testing -> streams/simulator -> providers/storage/... -> schemas.

A module may import its own subpackage and anything in a lower layer, never a higher or a sibling layer's
package. And no module grows past ~400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smsdispatch"

# The demo is the command line's own code (a package because it is long): one group with cli.
GROUP = {"demo": "cli"}
LAYERS = {
    "cli": 4,
    "agents": 3,
    "client": 3,
    "testing": 3,
    "streams": 2,
    "simulator": 2,
    "providers": 1,
    "storage": 1,
    "crypto": 1,
    "localkafka": 1,
    "schemas": 0,
    "settings": 0,
}
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.name != "__main__.py")


def part_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "smsdispatch":
        return None
    return GROUP.get(parts[1], parts[1])


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("smsdispatch.")}


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_package_and_lower_layers(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1 and relative.stem == "__init__":
        return  # the package root re-exports nothing
    own = relative.parts[0].removesuffix(".py")
    own = GROUP.get(own, own)
    assert own in LAYERS, f"{relative}: add its package to LAYERS"
    wrong = [
        name
        for name in imported(path)
        if (other := part_of(name)) is not None and other != own and LAYERS.get(other, 99) >= LAYERS[own]
    ]
    assert not wrong, f"{relative} (layer {LAYERS[own]}) imports {wrong}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_longer_than_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES
