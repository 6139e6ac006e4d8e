"""The layers of ``smsdispatch``, which the folder names show and these tests enforce.

The product's layers point one way, each importing only itself and the layers to its right; the client sits
beside the runtime, and the tools beside the whole product::

    cli ──> runtime ──> core ──> adapters ──> contract      (any layer to the right)
     │ │
     │ └──> client ──> core, adapters, contract             (of the runtime, runtime.topics only)
     │
     └────> tools ──> client, adapters, contract            (nothing in the product imports them)
            (simulator, localkafka, demo, testing)

* ``contract``  what outsiders rely on, pure data: the topic values' models, topic names, the environment.
* ``adapters``  the outside systems: ``twilio``, ``msg91``, ``storage``, ``crypto``, ``kafka``, ``partitions``.
  Each imports only the contract, never another adapter, but for the providers' shared base, ``sms``.
* ``core``      what the worker does, with no Faust: dispatch, senders, outcomes, ledger, tenants, opt-outs, ...
* ``runtime``   all of Faust and the Kafka clients' wiring: the app, the worker, its pages, topic
  administration. Moving off Faust is a change inside this package.
* ``client``    the Python library for producers and subscribers. It sits beside the runtime, not on it: it
  imports neither the runtime nor the CLI, with one exception, ``runtime.topics`` (creating the contract's
  topics before publishing, with aiokafka's admin client; no Faust), and importing it loads no Faust.
* ``cli``       the composition root: the only place that reads the environment and builds ``Settings``
  (tests/test_settings_read_once.py).
* ``tools``     beside the product, not under it: nothing in the product imports them but the CLI, which launches
  them. They build on the contract, the adapters and the client, and on each other (the demo on the simulator,
  local Kafka and the test kit); none needs the core or the runtime (the demo and the test kit start the
  worker as a child process, through the CLI).

Faust (and ``mode``, its service library) is imported by the runtime alone; importing every module of the other
layers but the CLI loads neither. And no module grows past ~400 lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path, PurePath

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smsdispatch"

#: Which layers each layer may import (itself included). ``adapters`` and ``tools`` are checked per subpackage.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "contract": frozenset({"contract"}),
    "adapters": frozenset({"adapters", "contract"}),
    "core": frozenset({"core", "adapters", "contract"}),
    "runtime": frozenset({"runtime", "core", "adapters", "contract"}),
    "client": frozenset({"client", "core", "adapters", "contract"}),
    "cli": frozenset({"cli", "runtime", "client", "core", "adapters", "contract", "tools"}),
    "tools": frozenset({"tools", "client", "adapters", "contract"}),
}
#: Modules a layer may import although their layer is not allowed to it, and why.
EXCEPTIONS: dict[str, dict[str, str]] = {
    "client": {"smsdispatch.runtime.topics": "creates the contract's topics before publishing; Faust-free"},
}
FAUST = ("faust", "mode")
#: The adapter every provider adapter may import: the HTTP wire, errors, retries and values they share.
SHARED_ADAPTER = "sms"
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if path.name != "__main__.py")


def layer_of(relative: PurePath) -> str | None:
    """The layer of a module (its path in the package); None for the package root's own ``__init__``."""
    return None if len(relative.parts) == 1 else relative.parts[0]


def imported(source: str) -> set[str]:
    """Every absolute import of a module, ours and third parties' (relative imports stay in their package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def faust_imports(source: str) -> list[str]:
    return sorted(name for name in imported(source) if name.split(".")[0] in FAUST)


def wrong_imports(relative: PurePath, source: str) -> list[str]:
    """What the module at ``relative`` in the package, with this source, imports of ours that it may not."""
    own = layer_of(relative)
    if own is None:
        return []  # the package root re-exports nothing
    assert own in MAY_IMPORT, f"{relative}: add its layer to MAY_IMPORT"
    wrong = []
    for name in sorted(imported(source)):
        parts = name.split(".")
        if parts[0] != "smsdispatch" or len(parts) < 2:
            continue
        other = parts[1]
        if other not in MAY_IMPORT[own] and name not in EXCEPTIONS.get(own, {}):
            wrong.append(name)
        elif own == other == "adapters" and len(parts) > 2 and parts[2] not in (relative.parts[1], SHARED_ADAPTER):
            wrong.append(name)  # one adapter never imports another (but the providers' shared base)
    return wrong


def relative(path: Path) -> PurePath:
    return path.relative_to(PACKAGE)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(relative(p)))
def test_a_module_imports_only_its_own_layer_and_the_layers_it_may(path: Path) -> None:
    wrong = wrong_imports(relative(path), path.read_text())

    assert not wrong, f"{relative(path)} ({layer_of(relative(path))}) imports {wrong}"


def test_every_folder_of_the_package_is_a_layer() -> None:
    folders = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}

    assert folders == set(MAY_IMPORT)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(relative(p)))
def test_only_the_runtime_imports_faust(path: Path) -> None:
    faust = faust_imports(path.read_text())

    assert layer_of(relative(path)) == "runtime" or not faust, f"{relative(path)} imports {faust}"


def test_the_core_imports_no_faust() -> None:
    core = [path for path in modules() if layer_of(relative(path)) == "core"]
    faust = {str(relative(path)): names for path in core if (names := faust_imports(path.read_text()))}

    assert len(core) > 20
    assert faust == {}


def test_importing_every_module_outside_the_runtime_and_the_cli_loads_no_faust() -> None:
    probe = (
        "import importlib, pkgutil, sys\n"
        "for layer in ('contract', 'adapters', 'core', 'client', 'tools'):\n"
        "    package = importlib.import_module('smsdispatch.' + layer)\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(module.name)\n"
        f"print(sorted({{name for name in sys.modules if name.split('.')[0] in {FAUST!r}}}))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)

    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "code", "wrong"),
    [
        ("core/dispatch.py", "from smsdispatch.runtime.app import StreamsApp", ["smsdispatch.runtime.app"]),
        ("core/dispatch.py", "import smsdispatch.cli", ["smsdispatch.cli"]),
        ("adapters/twilio/twilio.py", "import smsdispatch.adapters.storage", ["smsdispatch.adapters.storage"]),
        ("adapters/msg91/_provider.py", "from smsdispatch.adapters.sms import RetryPolicy", []),
        ("contract/messages.py", "from smsdispatch.tools.testing import kafka", ["smsdispatch.tools.testing"]),
        ("runtime/worker.py", "from smsdispatch.client import SmsClient", ["smsdispatch.client"]),
        ("client/_client.py", "from smsdispatch.runtime.topics import ensure_topics", []),
        ("client/_client.py", "from smsdispatch.runtime.app import StreamsApp", ["smsdispatch.runtime.app"]),
        ("tools/demo/stack.py", "from smsdispatch.core import dispatch", ["smsdispatch.core"]),
        ("cli/demo.py", "from smsdispatch.tools.demo import DemoStack", []),
    ],
)
def test_the_check_sees_each_kind_of_wrong_import(module: str, code: str, wrong: list[str]) -> None:
    assert wrong_imports(PurePath(module), code) == wrong


def test_the_faust_check_sees_faust_and_mode() -> None:
    assert faust_imports("import faust\nfrom mode import Service\nfrom faust.types import TP") == [
        "faust",
        "faust.types",
        "mode",
    ]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(relative(p)))
def test_no_module_is_longer_than_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES
