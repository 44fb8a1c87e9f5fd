"""Which code may import which: the rules that keep the layers apart.

relay_core's folders are layers, each importing only from the ones below it:

    errors < interfaces < hookspecs the public contract, below everything
    observe                         counters, metrics, traces, rate-limited logs
    protocol                        the sans-IO protocol: it counts and logs what it drops
    config                          the node's configuration and policies
    plugins, faults                 the plugin registry; the fault adapter
    runtime, testing                the asyncio node; the plugin authors' kit
    tools                           the command line, demo and bench
    __main__                        ``python -m relay_core``: the command line

Two folders on one level do not import each other. The protocol imports no I/O,
clock or concurrency machinery; only the tools import the built-in plugins; and
plugins, the built-in ones too, are written against the public core alone, so
that a third-party plugin can do all that a built-in one does. Checked on the
source (AST), imports under ``TYPE_CHECKING`` included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LEVELS = {"_compiled": 0, "_version": 0, "errors": 0, "interfaces": 1, "hookspecs": 2,
          "observe": 3, "protocol": 4, "config": 5, "plugins": 6, "faults": 6,
          "runtime": 7, "testing": 7, "tools": 8, "__main__": 9}
SANS_IO_FORBIDDEN = frozenset({"socket", "asyncio", "time", "threading", "selectors"})
PLUGIN_PACKAGES = ("relay_codecs", "relay_transports")
PUBLIC_CORE = frozenset({"relay_core", "relay_core.errors", "relay_core.interfaces",
                         "relay_core.hookspecs", "relay_core.testing"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, importer: str, is_package: bool = False) -> set[str]:
    """Every module ``source`` (the module ``importer``) imports, anywhere in it, by its full
    name; ``from package import name`` counts as importing ``package.name`` as well."""
    package = importer if is_package else importer.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def layer_of(module: str) -> str | None:
    """The relay_core folder (or top-level module) ``module`` lies in, if it is in the core."""
    parts = module.split(".")
    if parts[0] != "relay_core" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LEVELS else None


def core_sources() -> Iterator[Path]:
    return (path for path in sorted((ROOT / "relay_core").rglob("*.py"))
            if path.parent != ROOT / "relay_core" or path.name != "__init__.py")


def is_public(name: str) -> bool:
    """Whether ``name`` is a public core module, or a public name imported from one."""
    module, _, leaf = name.rpartition(".")
    return name in PUBLIC_CORE or (module in PUBLIC_CORE and not leaf.startswith("_"))


@pytest.mark.parametrize("path", list(core_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_core_module_imports_only_from_its_own_layer_and_the_layers_below(path: Path) -> None:
    importer = module_name(path)
    layer = layer_of(importer)
    assert layer is not None, f"{importer} lies in no layer: add its folder to LEVELS"
    imports = imported_modules(path.read_text(encoding="utf-8"), importer,
                               path.name == "__init__.py")
    upward = sorted(name for name in imports
                    if (other := layer_of(name)) is not None and other != layer
                    and LEVELS[other] >= LEVELS[layer])
    assert upward == [], f"{layer} (level {LEVELS[layer]}) imports from its level or above"
    if layer != "tools":
        plugins = sorted(name for name in imports if name.partition(".")[0] in PLUGIN_PACKAGES)
        assert plugins == [], "only relay_core.tools may import the built-in plugins"


@pytest.mark.parametrize("path", sorted((ROOT / "relay_core" / "protocol").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_protocol_imports_no_io_clock_or_concurrency(path: Path) -> None:
    imports = imported_modules(path.read_text(encoding="utf-8"), module_name(path))
    assert sorted(name for name in imports
                  if name.partition(".")[0] in SANS_IO_FORBIDDEN) == []


@pytest.mark.parametrize(
    "path",
    sorted(path for package in PLUGIN_PACKAGES for path in (ROOT / package).rglob("*.py")),
    ids=lambda path: str(path.relative_to(ROOT)))
def test_a_built_in_plugin_imports_only_public_core_modules(path: Path) -> None:
    imports = imported_modules(path.read_text(encoding="utf-8"), module_name(path))
    private = {name for name in imports if name.partition(".")[0] == "relay_core"
               and not is_public(name)}
    assert private == set(), f"{path.name} imports private core modules"


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("net-relay-*/**/*.py")),
                         ids=lambda path: str(path.relative_to(ROOT)))
def test_an_example_plugin_and_its_tests_use_only_public_core_names(path: Path) -> None:
    imports = imported_modules(path.read_text(encoding="utf-8"), "example.module")
    private = {name for name in imports
               if name.partition(".")[0] == "relay_core" and not is_public(name)}
    assert private == set(), f"{path.name} imports private core modules"


@pytest.mark.parametrize("source, importer, expected", [
    ("import socket", "relay_core.protocol.wire", {"socket"}),
    ("import asyncio.events as events", "relay_core.protocol.wire", {"asyncio.events"}),
    ("from ..runtime.node import Node", "relay_core.protocol.wire",
     {"relay_core.runtime.node", "relay_core.runtime.node.Node"}),
    ("from . import seal", "relay_core.protocol.wire",
     {"relay_core.protocol", "relay_core.protocol.seal"}),
    ("def later():\n    from time import monotonic", "relay_core.protocol.wire",
     {"time", "time.monotonic"}),
    ("if TYPE_CHECKING:\n    from ..tools.cli import main", "relay_core.runtime.node",
     {"relay_core.tools.cli", "relay_core.tools.cli.main"}),
])
def test_imports_are_found_wherever_they_are_and_named_in_full(
        source: str, importer: str, expected: set[str]) -> None:
    assert imported_modules(source, importer) == expected


@pytest.mark.parametrize("name, public", [
    ("relay_core", True), ("relay_core.Codec", True), ("relay_core.errors.RelayError", True),
    ("relay_core.testing", True), ("relay_core.testing._memory", False),
    ("relay_core.protocol.wire", False), ("relay_core.protocol.wire.Frame", False),
    ("relay_core._compiled", False),
])
def test_public_names_are_those_of_the_public_modules(name: str, public: bool) -> None:
    assert is_public(name) is public


@pytest.mark.parametrize("module, layer", [
    ("relay_core.protocol.wire", "protocol"), ("relay_core.errors", "errors"),
    ("relay_core.errors.RelayError", "errors"), ("relay_core", None), ("relay_codecs._json", None),
])
def test_a_module_lies_in_the_layer_of_its_folder(module: str, layer: str | None) -> None:
    assert layer_of(module) == layer


def import_graph() -> dict[str, set[str]]:
    """Which project modules each project module imports (TYPE_CHECKING imports included)."""
    sources = {module_name(path): path
               for package in ("relay_core", *PLUGIN_PACKAGES)
               for path in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        imports = imported_modules(path.read_text(encoding="utf-8"), module,
                                   path.name == "__init__.py")
        # ``from package import name`` names a module only when that module exists.
        graph[module] = {name for name in imports if name in sources and name != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as the modules along it, or [] when there is none.

    A package's ``__init__`` re-exporting its modules is not a cycle by itself: only
    edges between modules (not into a package) count.
    """
    packages = {name.rpartition(".")[0] for name in graph}
    edges = {module: {name for name in names if name not in packages}
             for module, names in graph.items()}
    state: dict[str, int] = {}  # 1 on the path being walked, 2 done
    path: list[str] = []

    def walk(module: str) -> list[str]:
        state[module] = 1
        path.append(module)
        for name in sorted(edges.get(module, ())):
            if state.get(name) == 1:
                return path[path.index(name):] + [name]
            if name not in state and (cycle := walk(name)):
                return cycle
        path.pop()
        state[module] = 2
        return []

    for module in sorted(edges):
        if module not in state and (cycle := walk(module)):
            return cycle
    return []


def test_no_module_imports_itself_through_others() -> None:
    assert find_cycle(import_graph()) == []


@pytest.mark.parametrize("graph, cycle", [
    ({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}}, ["a.x", "a.y", "a.z", "a.x"]),
    ({"a.x": {"a.y"}, "a.y": set()}, []),
])
def test_a_cycle_is_found_with_the_modules_along_it(
        graph: dict[str, set[str]], cycle: list[str]) -> None:
    assert find_cycle(graph) == cycle


MAX_MODULE_LINES = 500
LONGER_YET: dict[str, int] = {}  # a module still to be split by job: its current length


@pytest.mark.parametrize(
    "path",
    sorted(path for package in ("relay_core", *PLUGIN_PACKAGES)
           for path in (ROOT / package).rglob("*.py")),
    ids=lambda path: str(path.relative_to(ROOT)))
def test_a_module_has_one_job_and_reads_in_one_sitting(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= LONGER_YET.get(path.name, MAX_MODULE_LINES), (
        f"{path.name} has {lines} lines: split it by job (at most {MAX_MODULE_LINES})")
