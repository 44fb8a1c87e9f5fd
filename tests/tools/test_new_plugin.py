"""``net-relay new-plugin KIND NAME`` writes a package that installs into a fresh virtual
environment, registers through its entry point, and passes net-relay's kit unchanged."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from relay_core import ConfigError
from relay_core.tools.new_plugin import KINDS, write_plugin

INSTALL_LIMIT = 300.0  # seconds; a guard against a hang, not a speed requirement


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env,
                            timeout=INSTALL_LIMIT, check=False)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment that sees this one's packages (net-relay, pytest, pip,
    setuptools) through a .pth file, so installing needs no network."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "env")],
                   check=True, timeout=INSTALL_LIMIT)
    python = root / "env" / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = subprocess.run([str(python), "-c", where], capture_output=True, text=True,
                             check=True, timeout=INSTALL_LIMIT).stdout.strip()
    # addsitedir, not a bare path: the editable install of net-relay is itself a .pth there.
    ours = dict.fromkeys([sysconfig.get_path("purelib"), *site.getsitepackages()])
    (Path(purelib) / "net_relay_host.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in ours))
    return python


@pytest.mark.slow
def test_a_new_plugin_of_every_kind_installs_registers_and_passes_the_kit(
        fresh_python: Path, tmp_path: Path) -> None:
    # One install, one listing and one pytest run for the three kinds: each process
    # start costs seconds on a busy machine.
    roots = {kind: write_plugin(kind, f"tpl{kind}", tmp_path) for kind in KINDS}
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    run([str(fresh_python), "-m", "pip", "install", "--quiet", "--no-index",
         "--no-build-isolation", "--no-deps", *map(str, roots.values())], tmp_path, environment)
    listing = run([str(fresh_python), "-m", "relay_core.tools.cli", "plugins"], tmp_path,
                  environment).stdout.splitlines()
    for kind in KINDS:
        row = [kind, f"tpl{kind}", f"net-relay-tpl{kind}", "0.1.0", "ok"]
        assert any(line.split()[:5] == row for line in listing), listing
    result = run([str(fresh_python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                  "no:randomly", *(str(root / "tests") for root in roots.values())],
                 tmp_path, environment)
    assert " passed" in result.stdout and " failed" not in result.stdout, result.stdout


def test_a_new_plugin_needs_a_known_kind_and_a_usable_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown plugin kind 'codecs'; choose one of codec,"):
        write_plugin("codecs", "x", tmp_path)
    with pytest.raises(ConfigError, match="plugin name 'My_Codec' is not allowed"):
        write_plugin("codec", "My_Codec", tmp_path)
    write_plugin("codec", "twice", tmp_path)
    with pytest.raises(ConfigError, match="already exists"):
        write_plugin("codec", "twice", tmp_path)
