"""The compiled build: the pure-Python switch, staleness, and saying which build runs.

Whether the suite as a whole runs compiled or pure Python is in the header of
every run ("net-relay build under test"); CI runs it both ways.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from relay_core._compiled import (
    COMPILED_FOLDERS,
    COMPILED_MODULES,
    DIGEST_FILE,
    PACKAGES_ROOT,
    PURE_PYTHON_ENV,
    build_description,
    build_is_stale,
    compiled_modules,
    compiled_sources,
    record_build,
    source_path,
)

WHERE_THEY_CAME_FROM = (
    "import importlib, json, sys\n"
    "print(json.dumps({name: importlib.import_module(name).__file__ for name in sys.argv[1:]}))\n"
)


def run_python(code: str, *args: str, pure: str | None) -> str:
    env = {key: value for key, value in os.environ.items() if key != PURE_PYTHON_ENV}
    if pure is not None:
        env[PURE_PYTHON_ENV] = pure
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=True, timeout=120)
    return done.stdout


def test_the_switch_imports_every_compiled_module_from_its_source() -> None:
    files = json.loads(run_python(WHERE_THEY_CAME_FROM, *COMPILED_MODULES, pure="1"))
    assert {name: Path(file).name for name, file in files.items()} == {
        name: Path(source_path(name)).name for name in COMPILED_MODULES}


def test_the_switch_set_to_0_or_empty_leaves_the_build_as_installed() -> None:
    installed = json.loads(run_python(WHERE_THEY_CAME_FROM, *COMPILED_MODULES, pure=None))
    for setting in ("0", ""):
        assert json.loads(run_python(WHERE_THEY_CAME_FROM, *COMPILED_MODULES,
                                     pure=setting)) == installed


def test_version_says_which_build_runs() -> None:
    version = "from relay_core.tools.cli import main; main(['--version'])"
    assert "pure Python (NET_RELAY_PURE_PYTHON is set)" in run_python(version, pure="1")
    installed = run_python(version, pure=None)
    assert installed.startswith("net-relay ")
    which = "from relay_core._compiled import compiled_modules; print(len(compiled_modules()))"
    assert ("compiled with mypyc" in installed) == (int(run_python(which, pure=None)) > 0)


def test_the_description_matches_the_modules_that_run_compiled() -> None:
    compiled = compiled_modules()
    description = build_description()
    if len(compiled) == len(COMPILED_MODULES):
        assert description == "compiled with mypyc"
    elif compiled:
        assert description.startswith("partly compiled")
    else:
        assert description.startswith("pure Python")


def test_every_compiled_module_keeps_its_source_beside_it() -> None:
    for name in COMPILED_MODULES:
        assert (PACKAGES_ROOT / source_path(name)).is_file(), name


def copy_of_the_sources(tmp_path: Path) -> Path:
    for name in COMPILED_MODULES:
        target = tmp_path / source_path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGES_ROOT / source_path(name), target)
    return tmp_path


def test_a_build_is_current_until_a_compiled_source_changes(tmp_path: Path) -> None:
    root = copy_of_the_sources(tmp_path)
    record_build(root)
    assert not build_is_stale(root)
    wire = root / source_path("relay_core.protocol.wire")
    wire.write_text(wire.read_text() + "\n# edited\n")
    assert build_is_stale(root)


def test_touching_a_source_without_changing_it_leaves_the_build_current(tmp_path: Path) -> None:
    root = copy_of_the_sources(tmp_path)
    record_build(root)
    os.utime(root / source_path("relay_core.protocol.window"))
    assert not build_is_stale(root)


def test_a_module_added_to_a_compiled_folder_is_compiled_and_makes_the_build_stale(
        tmp_path: Path) -> None:
    root = copy_of_the_sources(tmp_path)
    record_build(root)
    (root / "relay_core/protocol/endpoint.py").write_text('"""A new protocol module."""\n')
    assert "relay_core/protocol/endpoint.py" in compiled_sources(root)
    assert build_is_stale(root)


def test_the_build_compiles_the_folders_but_not_plugin_hooks_or_package_surfaces() -> None:
    sources = compiled_sources()
    assert {source.rpartition("/")[0] for source in sources} == set(COMPILED_FOLDERS)
    assert "relay_core/protocol/wire.py" in sources
    assert not [source for source in sources
                if source.endswith(("/_plugin.py", "/__init__.py"))]


def imported_top_level_modules(source: Path) -> set[str]:
    tree = ast.parse(source.read_text())
    found = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    found |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and not node.level}
    return found


def test_compiled_modules_import_only_the_standard_library_and_the_project() -> None:
    """The build environment holds none of the third-party libraries: mypyc could not
    see their types (and a type check under TYPE_CHECKING would not hold at run time)."""
    project = {"relay_core", "relay_codecs", "relay_transports"}
    allowed = set(sys.stdlib_module_names) | project | {"__future__"}
    foreign = {source: sorted(imported_top_level_modules(PACKAGES_ROOT / source) - allowed)
               for source in compiled_sources()}
    assert {source: found for source, found in foreign.items() if found} == {}


def test_a_tree_never_compiled_counts_as_stale(tmp_path: Path) -> None:
    root = copy_of_the_sources(tmp_path)
    assert not (root / DIGEST_FILE).exists()
    assert build_is_stale(root)
