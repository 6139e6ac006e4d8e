"""Settings are read in one place: the CLI (the composition root). Library code gets them as arguments."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "smsdispatch"
# The composition root, the settings model itself, and tools that read their own tool's variables (JAVA_HOME,
# XDG dirs, SMSDISPATCH_TEST_BROKER), not the service's settings.
ALLOWED = ("cli/", "contract/settings.py", "tools/localkafka/", "tools/testing/")


def environment_reads(path: Path) -> list[str]:
    """``os.environ``/``os.getenv`` uses and ``Settings()`` calls in a module's code (docstrings do not count)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv")
            and getattr(node.value, "id", "") == "os"
        ):
            found.append(f"{path.name}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Settings":
            found.append(f"{path.name}:{node.lineno} Settings()")
    return found


def library_modules() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py")) if not str(path.relative_to(PACKAGE)).startswith(ALLOWED)]


def test_no_module_below_the_cli_reads_the_environment_or_builds_settings() -> None:
    offenders = [read for path in library_modules() for read in environment_reads(path)]

    assert offenders == []


@pytest.mark.parametrize("code", ["import os\nx = os.environ['A']", "import os\nx = os.getenv('A')", "x = Settings()"])
def test_the_check_would_see_each_kind_of_read(tmp_path: Path, code: str) -> None:
    module = tmp_path / "probe.py"
    module.write_text(code)

    assert len(environment_reads(module)) == 1
