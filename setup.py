"""Build hook: compile net-relay's per-message modules with mypyc where this machine can.

Everything about the package but its extensions is in pyproject.toml. The
extensions are optional twice over: if mypyc cannot translate the modules,
or no C compiler can build them, the install goes on as pure Python (the
sources are always installed), with a warning saying why. Set
NET_RELAY_PURE_PYTHON=1 to skip compiling on purpose.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from setuptools import Extension

ROOT = Path(__file__).resolve().parent


def load_module_list() -> ModuleType:
    """relay_core/_compiled.py, loaded by path: the package's dependencies are not installed yet."""
    spec = importlib.util.spec_from_file_location("_net_relay_compiled",
                                                  ROOT / "relay_core" / "_compiled.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def warn(reason: str) -> None:
    print(f"net-relay: installing pure Python: {reason}", file=sys.stderr, flush=True)


def fall_back(listing: ModuleType, reason: str) -> list[Extension]:
    warn(reason)
    listing.record_build(ROOT)  # these sources were tried: dev.py need not try them again
    return []


def remove_leftover_extensions(listing: ModuleType) -> None:
    """Delete extensions of modules no longer compiled: Python would import them over the source."""
    from importlib.machinery import EXTENSION_SUFFIXES

    # Longest first: "x.cpython-311-x86_64-linux-gnu.so" also ends in plain ".so".
    suffixes = sorted(EXTENSION_SUFFIXES, key=len, reverse=True)
    for package in ("relay_core", "relay_codecs", "relay_transports"):
        for extension in (ROOT / package).rglob("*"):
            suffix = next((s for s in suffixes if extension.name.endswith(s)), None)
            if suffix is None:
                continue
            folder = extension.parent.relative_to(ROOT).as_posix().replace("/", ".")
            name = f"{folder}.{extension.name.removesuffix(suffix)}"
            if name not in listing.COMPILED_MODULES:
                print(f"net-relay: removing {extension.relative_to(ROOT)}, left from an earlier"
                      " build", file=sys.stderr)
                extension.unlink()


def compiled_extensions() -> list[Extension]:
    listing = load_module_list()
    remove_leftover_extensions(listing)
    if listing.pure_python_requested():
        warn(f"{listing.PURE_PYTHON_ENV} is set")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        return fall_back(listing, "mypyc (part of mypy) is not installed in the build environment")
    # Errors in the modules they import but that are not compiled are not this build's
    # business (their optional dependencies are absent from the build environment).
    # Its own type cache: one left by a lint run (made with every optional dependency
    # installed) would hide from this build what its environment lacks.
    arguments = ["--follow-imports=silent", "--cache-dir", "build/mypyc-cache",
                 *listing.compiled_sources(ROOT)]
    try:
        extensions: list[Extension] = mypycify(arguments, opt_level="3", group_name="net_relay")
    # Whatever goes wrong, the sources still work: fall back (mypyc exits on a type error).
    except (Exception, SystemExit) as error:  # noqa: BLE001
        return fall_back(listing, f"mypyc could not translate the modules ({error!r})")
    for extension in extensions:
        extension.optional = True  # no C compiler: setuptools warns and goes on
    listing.record_build(ROOT)
    return extensions


def main() -> None:
    from setuptools import setup

    setup(ext_modules=compiled_extensions())


if __name__ == "__main__":  # as setuptools runs it; dev.py imports it for load_module_list
    main()
