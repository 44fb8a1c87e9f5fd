#!/usr/bin/env python3
"""Set up net-relay in a local virtual environment, then run something in it.

    python3 dev.py demo              two nodes exchange messages on loopback
    python3 dev.py test [ARGS...]    the test suite (ARGS go to pytest)
    python3 dev.py lint              mypy (strict) and ruff over the packages
    python3 dev.py net-relay ARGS    any net-relay command

Needs only python3 with venv and pip. The environment (.venv) is created on
first use and brought up to date whenever a pyproject.toml changes.

NET_RELAY_DEV_PYTHON=/path/to/python3.X runs any of these on that interpreter
instead, in an environment of its own (.venv-3.X): .ci/run uses it for every
supported Python the machine has.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

from setup import load_module_list

ROOT = Path(__file__).resolve().parent
DEV_PYTHON_ENV = "NET_RELAY_DEV_PYTHON"
COMPILED = load_module_list()
EXAMPLE_PLUGINS = sorted(p.parent for p in (ROOT / "examples").glob("*/pyproject.toml"))
PYTEST_NO_TESTS = 5
LINTED_PACKAGES = ["relay_core", "relay_codecs", "relay_transports", "net_relay"]


def chosen_interpreter() -> tuple[str | None, Path]:
    """The interpreter asked for with NET_RELAY_DEV_PYTHON (None: this one) and its venv."""
    python = os.environ.get(DEV_PYTHON_ENV)
    if not python:
        return None, ROOT / ".venv"
    try:
        version = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"dev.py: {DEV_PYTHON_ENV}={python} cannot be run: {exc}") from None
    return python, ROOT / f".venv-{version}"


INTERPRETER, VENV = chosen_interpreter()
STAMP = VENV / ".net-relay-installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def wanted_stamp() -> str:
    digest = hashlib.sha256()
    for file in [ROOT / "pyproject.toml", ROOT / "setup.py",
                 *(p / "pyproject.toml" for p in EXAMPLE_PLUGINS)]:
        digest.update(file.read_bytes())
    return digest.hexdigest()


def ensure_environment() -> Path:
    python = venv_python()
    if not python.exists():
        print(f"creating {VENV} ...", flush=True)
        if INTERPRETER is None:
            venv.create(VENV, with_pip=True)
        else:
            subprocess.run([INTERPRETER, "-m", "venv", VENV], check=True)
    stamp = wanted_stamp()
    if not STAMP.exists() or STAMP.read_text() != stamp:
        print(f"installing net-relay and its test tools into {VENV.name} ...", flush=True)
        packages = ["-e", f"{ROOT}[test,lint,fast]"]
        for plugin in EXAMPLE_PLUGINS:
            packages += ["-e", str(plugin)]
        pip_install(python, packages)
        STAMP.write_text(stamp)
    elif not COMPILED.pure_python_requested() and COMPILED.build_is_stale(ROOT):
        print(f"compiling the changed hot modules with mypyc (about a minute; "
              f"{COMPILED.PURE_PYTHON_ENV}=1 skips this and runs pure Python) ...", flush=True)
        pip_install(python, ["--no-deps", "-e", str(ROOT)])
    return python


def pip_install(python: Path, arguments: list[str]) -> None:
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *arguments], check=True)


def lint(python: Path) -> int:
    checks = [
        [python, "-m", "mypy", "--strict", *LINTED_PACKAGES],
        [python, "-m", "ruff", "check", "."],
    ]
    failed = [check for check in checks if subprocess.run(check, cwd=ROOT, check=False).returncode]
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("test", "lint", "demo", "net-relay"):
        print(__doc__, file=sys.stderr)
        return 2
    python = ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "test":
        code = subprocess.run([python, "-m", "pytest", *rest], cwd=ROOT, check=False).returncode
        if code == PYTEST_NO_TESTS:
            print("dev.py: pytest collected no tests; that is a failure here", file=sys.stderr)
            return 1
        return code
    if command == "lint":
        return lint(python)
    cli = [python, "-m", "relay_core.tools.cli"]
    args = ["demo", *rest] if command == "demo" else rest
    return subprocess.run([*cli, *args], cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except subprocess.CalledProcessError as exc:
        print(f"dev.py: {exc}", file=sys.stderr)
        sys.exit(1)
