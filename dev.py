#!/usr/bin/env python3
"""Set up net-relay in a local virtual environment, then run something in it.

    python3 dev.py demo              two nodes exchange messages on loopback
    python3 dev.py test [ARGS...]    the test suite (ARGS go to pytest)
    python3 dev.py lint              mypy (strict) and ruff over the packages
    python3 dev.py docs              the documentation site (mkdocs build --strict), into
                                     build/site; adds the docs extra to the environment
    python3 dev.py net-relay ARGS    any net-relay command

Needs only python3 with venv and pip. The environment (.venv) is created on
first use and brought up to date whenever a pyproject.toml changes; each step
shows its name and time while it runs, and pip's own output goes to
.venv/pip.log (shown when a step fails).

Stopping dev.py (Ctrl-C, SIGTERM) stops what it started: a SIGTERM is passed
on at once; after a SIGINT, which a terminal sends to the child as well, the
child gets a moment to end by itself before it is passed on. A child still
running STOP_GRACE_SECONDS later is killed.

NET_RELAY_DEV_PYTHON=/path/to/python3.X runs any of these on that interpreter
instead, in an environment of its own (.venv-3.X): .ci/run uses it for every
supported Python the machine has.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import tomllib
import venv
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from setup import load_module_list

ROOT = Path(__file__).resolve().parent
DEV_PYTHON_ENV = "NET_RELAY_DEV_PYTHON"
COMPILED = load_module_list()
EXAMPLE_PLUGINS = sorted(p.parent for p in (ROOT / "examples").glob("*/pyproject.toml"))
PYTEST_NO_TESTS = 5
LINTED_PACKAGES = ["relay_core", "relay_codecs", "relay_transports", "net_relay"]
SITE = ROOT / "build" / "site"
STOP_GRACE_SECONDS = 10.0
SIGINT_NUDGE_SECONDS = 1.0  # the child most likely got the terminal's SIGINT too
TICK_SECONDS = 0.25
QUIET_REPORT_SECONDS = 30.0  # how often a step reports progress when stdout is not a terminal
PIP_STEPS = ("Collecting", "Downloading", "Building", "Installing", "Preparing", "Getting",
             "Obtaining", "Successfully")


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
DOCS_STAMP = VENV / ".net-relay-docs-installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def wanted_stamp() -> str:
    digest = hashlib.sha256()
    for file in [ROOT / "pyproject.toml", ROOT / "setup.py",
                 *(p / "pyproject.toml" for p in EXAMPLE_PLUGINS)]:
        digest.update(file.read_bytes())
    return digest.hexdigest()


class StepFailed(Exception):
    """A set-up step's command failed; the message holds the end of its log."""


class Stopped(Exception):
    """dev.py was asked to stop (SIGINT or SIGTERM) while a child ran."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def wait_for_child(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS,
                   tick: Callable[[], None] | None = None) -> tuple[int, int | None]:
    """Wait for ``process``, passing dev.py's SIGINT and SIGTERM on to it (see the module's
    docstring); kill it if it outlives ``grace``. Its exit status as a shell reports it
    (128 + N for a signal N), and the signal that asked dev.py to stop, if any."""
    asked: list[tuple[int, float]] = []

    def note(signum: int, frame: FrameType | None) -> None:
        if not asked:
            asked.append((signum, time.monotonic()))
        if signum != signal.SIGINT:
            process.send_signal(signum)  # does nothing once the child has ended

    previous = {signum: signal.signal(signum, note) for signum in (signal.SIGINT, signal.SIGTERM)}
    nudged = False
    try:
        while True:
            try:
                code = process.wait(timeout=TICK_SECONDS)
                return (128 - code if code < 0 else code), (asked[0][0] if asked else None)
            except subprocess.TimeoutExpired:
                pass
            if asked:
                signum, since = asked[0]
                waited = time.monotonic() - since
                if signum == signal.SIGINT and not nudged and waited > SIGINT_NUDGE_SECONDS:
                    process.send_signal(signal.SIGINT)
                    nudged = True
                if waited > grace:
                    process.kill()
            elif tick is not None:
                tick()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_child(command: Sequence[str | Path], cwd: Path = ROOT,
              grace: float = STOP_GRACE_SECONDS) -> int:
    """Run a command to its end, or until dev.py is stopped; its exit status."""
    code, _ = wait_for_child(subprocess.Popen(command, cwd=cwd), grace)
    return code


def run_step(title: str, command: Sequence[str | Path], log: Path,
             env: dict[str, str] | None = None) -> None:
    """Run a set-up step with its output in ``log``, showing its name and elapsed time."""
    started = time.monotonic()
    on_terminal = sys.stdout.isatty()
    reported = [started]

    def show_progress() -> None:
        now = time.monotonic()
        if on_terminal:
            doing = _last_pip_step(log)
            line = f"  {title} ... {now - started:.0f} s{f' ({doing})' if doing else ''}"
            print(f"\r{line[:100]:<100}", end="", flush=True)
        elif now - reported[0] >= QUIET_REPORT_SECONDS:
            reported[0] = now
            print(f"  {title} ... {now - started:.0f} s so far", flush=True)

    print(f"  {title} ...", flush=True)
    with log.open("a") as output:
        output.write(f"\n==> {title}: {' '.join(map(str, command))}\n")
        output.flush()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        code, stopped_by = wait_for_child(process, tick=show_progress)
    if on_terminal:
        print("\r" + " " * 100 + "\r", end="")
    if stopped_by is not None:
        raise Stopped(stopped_by)
    if code:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StepFailed(f"{title} failed (exit status {code}); the end of {log}:\n{tail}")
    print(f"  {title}: done in {time.monotonic() - started:.0f} s", flush=True)


def _last_pip_step(log: Path) -> str:
    """The last line in which pip names what it does (Collecting, Building, ...), if any."""
    try:
        lines = log.read_text(errors="replace").splitlines()[-40:]
    except OSError:
        return ""
    return next((line.strip()[:60] for line in reversed(lines) if line.startswith(PIP_STEPS)),
                "")


def ensure_environment() -> Path:
    python = venv_python()
    log = VENV / "pip.log"
    started = time.monotonic()
    worked = False
    if not python.exists():
        worked = True
        print(f"dev.py: setting up {VENV.name} (once; later runs reuse it)", flush=True)
        print(f"  creating {VENV.name} ...", flush=True)
        if INTERPRETER is None:
            venv.create(VENV, with_pip=True)
        else:
            subprocess.run([INTERPRETER, "-m", "venv", VENV], check=True)
        print(f"  creating {VENV.name}: done in {time.monotonic() - started:.0f} s", flush=True)
    stamp = wanted_stamp()
    if not STAMP.exists() or STAMP.read_text() != stamp:
        worked = True
        packages = ["-e", f"{ROOT}[test,lint,fast]"]
        for plugin in EXAMPLE_PLUGINS:
            packages += ["-e", str(plugin)]
        # Pure first, so that the slow compile below is a step of its own, with its own time.
        pure = {**os.environ, COMPILED.PURE_PYTHON_ENV: "1"}
        run_step("installing net-relay, its dependencies and test tools", [
            python, "-m", "pip", "install", "--disable-pip-version-check", *packages], log, pure)
        STAMP.write_text(stamp)
    if not COMPILED.pure_python_requested() and COMPILED.build_is_stale(ROOT):
        worked = True
        run_step(f"compiling the hot modules with mypyc (minutes; "
                 f"{COMPILED.PURE_PYTHON_ENV}=1 skips this and runs pure Python)",
                 [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
                  "-e", str(ROOT)], log)
        # setup.py falls back to pure Python rather than fail; say so here, not only in the log.
        this_step = log.read_text(errors="replace").rpartition("\n==> ")[2]
        fell_back = [line.strip() for line in this_step.splitlines()
                     if "net-relay: installing pure Python" in line]
        if fell_back:
            print(f"  {fell_back[-1]}", flush=True)
    if worked:
        print(f"dev.py: {VENV.name} ready in {time.monotonic() - started:.0f} s "
              f"(pip's output: {log})", flush=True)
    return python


def docs_requirements() -> list[str]:
    """The ``docs`` extra, as pyproject.toml declares it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["docs"])


def docs(python: Path, args: Sequence[str]) -> int:
    requirements = docs_requirements()
    wanted = "\n".join(requirements)
    if not DOCS_STAMP.exists() or DOCS_STAMP.read_text() != wanted:
        # The requirements alone: reinstalling net-relay itself would undo a compiled build.
        run_step("installing the docs extra (mkdocs, Material, mkdocstrings)",
                 [python, "-m", "pip", "install", "--disable-pip-version-check", *requirements],
                 VENV / "pip.log")
        DOCS_STAMP.write_text(wanted)
    # The API reference reads the sources (mkdocs.yml); pure Python keeps any import of them
    # off the compiled modules, whose docstrings and signatures may differ in detail.
    os.environ[COMPILED.PURE_PYTHON_ENV] = "1"
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")  # Material's banner about its successor
    code = run_child([python, "-m", "mkdocs", "build", "--strict", "--site-dir", SITE, *args])
    if code == 0:
        print(f"dev.py: the site is in {SITE} (open {SITE / 'index.html'})", flush=True)
    return code


def lint(python: Path) -> int:
    checks = [
        [python, "-m", "mypy", "--strict", *LINTED_PACKAGES],
        [python, "-m", "ruff", "check", "."],
    ]
    failed = [check for check in checks if run_child(check)]
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("test", "lint", "docs", "demo", "net-relay"):
        print(__doc__, file=sys.stderr)
        return 2
    python = ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "test":
        code = run_child([python, "-m", "pytest", *rest])
        if code == PYTEST_NO_TESTS:
            print("dev.py: pytest collected no tests; that is a failure here", file=sys.stderr)
            return 1
        return code
    if command == "lint":
        return lint(python)
    if command == "docs":
        return docs(python, rest)
    cli = [python, "-m", "relay_core.tools.cli"]
    args = ["demo", *rest] if command == "demo" else rest
    # From where it was called: `net-relay run app:setup` imports ./app.py, and paths such
    # as --config FILE are the caller's.
    return run_child([*cli, *args], cwd=Path.cwd())


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (subprocess.CalledProcessError, StepFailed) as exc:
        print(f"dev.py: {exc}", file=sys.stderr)
        sys.exit(1)
    except Stopped as stop:
        print(f"dev.py: stopped ({stop})", file=sys.stderr)
        sys.exit(128 + stop.signum)
