"""What a release carries: the sdist holds everything its tests need, both wheels carry the
licence, and one version number is the package's, its metadata's and the CLI's.

The builds run setuptools' own PEP 517 hooks on a copy of the tree (pure Python, so no
compiler is involved): what ``python -m build`` would make, without the network.
"""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import relay_core

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
    "*.so", "_compiled.sha256")
FOLDERS_THE_SDIST_CARRIES_WHOLE = ("tests", "docs", "examples")
TOP_LEVEL_FILES = ("LICENSE", "README.md", "CHANGELOG.md", "CONTRIBUTING.md", "pyproject.toml",
                   "setup.py", "MANIFEST.in")


def build(kind: str, tree: Path, out: Path) -> Path:
    """Run setuptools' ``build_sdist`` or ``build_wheel`` hook in ``tree``; the built file."""
    out.mkdir()
    code = (f"import sys, setuptools.build_meta as hooks; "
            f"print(hooks.build_{kind}(sys.argv[1]))")
    env = {**os.environ, "NET_RELAY_PURE_PYTHON": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree") / "net-relay"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCE)
    return tree


@pytest.fixture(scope="module")
def sdist(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("sdist", source_tree, tmp_path_factory.mktemp("sdist") / "out")


@pytest.fixture(scope="module")
def wheel(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("wheel", source_tree, tmp_path_factory.mktemp("wheel") / "out")


def sdist_files(sdist: Path) -> set[str]:
    with tarfile.open(sdist) as archive:
        return {name.partition("/")[2] for name in archive.getnames() if archive.getmember(name).isfile()}


def source_files(tree: Path, folder: str) -> set[str]:
    return {str(path.relative_to(tree)) for path in (tree / folder).rglob("*") if path.is_file()}


def test_the_sdist_holds_every_test_doc_and_example_file(source_tree: Path, sdist: Path) -> None:
    files = sdist_files(sdist)
    for folder in FOLDERS_THE_SDIST_CARRIES_WHOLE:
        assert source_files(source_tree, folder) - files == set(), folder
    assert {"tests/conftest.py", "tests/nodes.py", "tests/certs.py"} <= files


def test_the_sdist_holds_the_licence_and_the_project_files(sdist: Path) -> None:
    assert set(TOP_LEVEL_FILES) <= sdist_files(sdist)


def test_the_sdist_holds_no_build_leftovers(sdist: Path) -> None:
    leftovers = [name for name in sdist_files(sdist)
                 if "__pycache__" in name or name.endswith((".pyc", ".so"))]
    assert leftovers == []


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(archive.read(name))


def test_a_pure_build_is_a_wheel_for_any_platform(wheel: Path) -> None:
    assert wheel.name == f"net_relay-{relay_core.__version__}-py3-none-any.whl"


def test_the_wheel_carries_the_licence_and_says_it_is_mit(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        licences = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert len(licences) == 1
        assert "Copyright (c) 2026 the net-relay authors" in archive.read(licences[0]).decode()
    info = metadata(wheel)
    assert info["License-Expression"] == "MIT"
    assert info.get_all("License-File") == ["LICENSE"]


def test_the_wheel_names_its_home_authors_and_classifiers(wheel: Path) -> None:
    info = metadata(wheel)
    urls = dict(url.split(", ", 1) for url in info.get_all("Project-URL") or [])
    assert urls["Homepage"] == "https://github.com/net-relay/net-relay"
    assert all(url.startswith("https://github.com/net-relay/net-relay") for url in urls.values())
    assert info["Author"] or info["Author-email"]
    classifiers = info.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert not any(c.startswith("License ::") for c in classifiers)  # the SPDX expression says it
    assert "actors" in (info["Keywords"] or "")


def test_the_wheel_installs_every_public_package(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packages = {name.partition("/")[0] for name in archive.namelist() if "/" in name}
    assert {"relay_core", "relay_codecs", "relay_transports", "net_relay"} <= packages


def test_one_version_number_is_the_package_s_and_the_wheel_s(wheel: Path) -> None:
    assert metadata(wheel)["Version"] == relay_core.__version__ == "0.2.0"


def test_the_command_line_prints_the_package_version() -> None:
    done = subprocess.run([sys.executable, "-m", "relay_core.tools.cli", "--version"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.startswith(f"net-relay {relay_core.__version__}, ")
