"""Which modules a build compiles with mypyc, which of them run compiled, and the way back.

A build with a C compiler turns the modules that handle every message into C
extensions (setup.py); the ``.py`` files stay beside them, and an extension
is imported in preference to its source. ``NET_RELAY_PURE_PYTHON=1`` makes a
process import the sources instead (for a debugger or a profiler that needs
Python frames, or to compare the two) and makes a build skip compiling.

Which modules: every module in :data:`COMPILED_FOLDERS`, except the ones
:data:`INTERPRETED` lists with its reason. A module added to one of those
folders is compiled without editing anything here. Every compiled module
imports only the standard library and the project's own modules (the build
environment has none of the third-party ones; tests/test_build.py checks it).

Speed idioms. mypyc turns typed attribute reads, calls between compiled
functions and arithmetic on small ints into plain C, but a few things stay as
slow as in Python, and the compiled modules work around them the same way
everywhere, without a comment at each place:

- a module-level ``Final`` name for a function or bound method of a standard
  library object (``_crc32: Final = zlib.crc32``, ``_LENGTH.unpack_from``, a
  context variable's ``get``): compiled code reads a ``Final`` as a C constant,
  where a plain global or ``module.attribute`` is a dictionary look-up per call;
- a bound method of a builtin container kept on the instance
  (``self._append = self._items.append``): a method of a ``deque`` or ``dict``
  called as ``self._items.append(x)`` is looked up by name at every call;
- a helper of a few lines written out in the function that calls it once per
  message, where the call itself cost more than its body (instruction counts,
  benchmarks/instructions.py, decide: an idiom that no longer pays is removed);
- a class rather than a Protocol as an attribute's type where one side calls
  the other per message: a call through a Protocol is a Python-level call;
- a class that mypyc cannot compile as a native one (a public plugin class, an
  ``asyncio.Protocol``) whose method runs per packet or payload (the udp and tcp
  transports' ``send``, msgpack's ``encode`` and ``decode``, a tcp connection's
  ``data_received``) answers it with the bound method of the compiled helper
  that does the work, set on the instance in ``__init__``: its own method (which
  the interface requires, and which documents the call) would put a Python-level
  call in front of each, about 1% of a round trip's instructions apiece.

setup.py loads this file by its path, before anything is installed, so it
imports nothing but the standard library.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

__all__ = [
    "COMPILED_FOLDERS",
    "COMPILED_MODULES",
    "INTERPRETED",
    "PURE_PYTHON_ENV",
    "build_description",
    "build_is_stale",
    "compiled_modules",
    "compiled_sources",
    "honour_pure_python_switch",
    "pure_python_requested",
    "record_build",
    "source_path",
]

COMPILED_FOLDERS: tuple[str, ...] = (
    "relay_core/protocol",
    "relay_core/runtime",
    "relay_core/observe",
    "relay_codecs",
    "relay_transports",
)
"""The folders whose modules handle messages: the protocol, the runtime that drives it,
the counters, the codecs and the transports' socket I/O."""

_PUBLIC = "public API: help() shows its docstrings and signatures, which a build strips"
_OPTIONS = ("public plugin class: the registry checks its options against its signature, and "
            "it checks their values with ConfigError, where a compiled one raises TypeError")
_HOOKS = "pluggy hooks: pluggy marks each hook function with an attribute, which a compiled " \
         "function refuses"

INTERPRETED: Mapping[str, str] = {
    "*/__init__.py": "a package's surface: re-exports and lazy imports",
    "*/_plugin.py": _HOOKS,
    "relay_core/protocol/messages.py": f"{_PUBLIC}; checks the user's message classes",
    "relay_core/protocol/seal.py": "imports cryptography",
    "relay_core/protocol/stream_framings.py": _PUBLIC,
    "relay_core/protocol/handshake.py": ("compiled by mypyc 2.4, the dispatcher finds its Final"
                                         " HELLO_WAITS unset (NameError) when it first dials"),
    "relay_core/protocol/heph.py": ("compiled by mypyc 2.4, importing it raises KeyError: 'object'"
                                    " (building its frozen, slotted HephEnvelope dataclass)"),
    "relay_core/runtime/actors.py": f"{_PUBLIC}; checks what users pass to refs and contexts",
    "relay_core/runtime/node.py": _PUBLIC,
    "relay_core/runtime/heph_reply.py": f"{_PUBLIC}; a frozen, slotted dataclass, as heph.py's",
    "relay_core/runtime/rpc.py": _PUBLIC,
    "relay_core/runtime/loop.py": f"{_PUBLIC}; imports uvloop",
    "relay_core/observe/metrics.py": f"{_PUBLIC}; imports prometheus_client",
    "relay_core/observe/ratelog.py": _PUBLIC,
    "relay_core/observe/snapshot.py": _PUBLIC,
    "relay_codecs/_cbor.py": _OPTIONS,
    "relay_codecs/_json.py": _OPTIONS,
    "relay_codecs/_msgpack.py": _OPTIONS,
    "relay_codecs/_none.py": _OPTIONS,
    "relay_codecs/_zstd.py": _OPTIONS,
    "relay_transports/_udp.py": _OPTIONS,
    "relay_transports/_tcp.py": _OPTIONS,
    "relay_transports/_tcp_options.py": "checks the tcp transport's and its peers' options",
    "relay_transports/_addresses.py": "checks the hosts and ports users give",
    "relay_transports/_quic*.py": "the quic transport: imports aioquic",
    "relay_transports/_certs.py": "imports cryptography",
}
"""Modules of :data:`COMPILED_FOLDERS` left interpreted (paths or ``fnmatch`` patterns
relative to the folder holding the packages), each with the reason."""

PURE_PYTHON_ENV = "NET_RELAY_PURE_PYTHON"
DIGEST_FILE = "relay_core/_compiled.sha256"
"""Written by setup.py when it compiles: a digest of the sources it compiled."""
PACKAGES_ROOT = Path(__file__).resolve().parent.parent


def compiled_sources(root: Path = PACKAGES_ROOT) -> list[str]:
    """The sources a build compiles under ``root``, as paths relative to it, sorted."""
    found = (path.relative_to(root).as_posix()
             for folder in COMPILED_FOLDERS for path in (root / folder).glob("*.py"))
    return sorted(source for source in found
                  if not any(fnmatch.fnmatchcase(source, pattern) for pattern in INTERPRETED))


def _module_name(source: str) -> str:
    return source.removesuffix(".py").replace("/", ".")


COMPILED_MODULES: tuple[str, ...] = tuple(map(_module_name, compiled_sources()))
"""The modules a build compiles, by name: those of :func:`compiled_sources`."""


def source_path(name: str) -> str:
    """Where a module's source lies, relative to the folder holding the packages."""
    return name.replace(".", "/") + ".py"


def _sources_digest(root: Path) -> str:
    # The names too: a module added to a compiled folder makes the build stale.
    digest = hashlib.sha256()
    for source in compiled_sources(root):
        digest.update(source.encode() + b"\0")
        digest.update((root / source).read_bytes())
    return digest.hexdigest()


def record_build(root: Path) -> None:
    """Note which sources the extensions about to be built come from."""
    (root / DIGEST_FILE).write_text(_sources_digest(root) + "\n")


def build_is_stale(root: Path = PACKAGES_ROOT) -> bool:
    """Whether the sources under ``root`` differ from those last compiled there.

    Only an editable install can go stale (its sources are edited in place),
    but any can be asked. Also true where nothing was ever compiled.
    """
    try:
        return (root / DIGEST_FILE).read_text().strip() != _sources_digest(root)
    except OSError:
        return True


def pure_python_requested() -> bool:
    """Whether ``NET_RELAY_PURE_PYTHON`` is set to anything but empty or ``0``."""
    return os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")


class _SourceFirstFinder(importlib.abc.MetaPathFinder):
    """Finds a compiled module's ``.py`` file, so that its extension is passed over."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED_MODULES or not path:
            return None
        filename = fullname.rpartition(".")[2] + ".py"
        for directory in path:
            source = Path(directory) / filename
            if source.is_file():
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def honour_pure_python_switch() -> None:
    """Import the sources of the compiled modules from now on, if the environment asks."""
    if pure_python_requested() and not any(
            isinstance(finder, _SourceFirstFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceFirstFinder())


def compiled_modules() -> list[str]:
    """The modules of :data:`COMPILED_MODULES` that this process runs compiled."""
    return [name for name in COMPILED_MODULES
            if _is_extension(importlib.import_module(name))]


def build_description() -> str:
    """One line for ``--version`` and the bench: compiled, partly, or pure Python, and why."""
    compiled = compiled_modules()
    if compiled and build_is_stale():
        return "compiled with mypyc, STALE: its sources have changed since (rebuild it)"
    if len(compiled) == len(COMPILED_MODULES):
        return "compiled with mypyc"
    if compiled:
        return f"partly compiled with mypyc ({len(compiled)} of {len(COMPILED_MODULES)} modules)"
    if pure_python_requested():
        return f"pure Python ({PURE_PYTHON_ENV} is set)"
    return "pure Python (this install has no compiled modules)"


def _is_extension(module: ModuleType) -> bool:
    return isinstance(module.__spec__ and module.__spec__.loader,
                      importlib.machinery.ExtensionFileLoader)


# relay_core/__init__.py imports this module before any other, so the switch
# is in place before the first compiled module is imported.
honour_pure_python_switch()
