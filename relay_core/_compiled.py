"""Which modules a build compiles with mypyc, which of them run compiled, and the way back.

A build with a C compiler turns the modules that handle every message into C
extensions (setup.py); the ``.py`` files stay beside them, and an extension
is imported in preference to its source. ``NET_RELAY_PURE_PYTHON=1`` makes a
process import the sources instead (for a debugger or a profiler that needs
Python frames, or to compare the two) and makes a build skip compiling.

setup.py loads this file by its path, before anything is installed, so it
imports nothing but the standard library.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = [
    "COMPILED_MODULES",
    "PURE_PYTHON_ENV",
    "build_description",
    "build_is_stale",
    "compiled_modules",
    "honour_pure_python_switch",
    "pure_python_requested",
    "record_build",
    "source_path",
]

COMPILED_MODULES: tuple[str, ...] = (
    "relay_core.protocol.wire",
    "relay_core.protocol.window",
    "relay_core.protocol.coalesce",
    "relay_core.protocol.framing",
    "relay_core.protocol.replycache",
    "relay_core.protocol.events",
    "relay_core.protocol.calls",
    "relay_core.protocol.decoding",
    "relay_core.protocol.endpoint",
    "relay_core.runtime.calls",
    "relay_core.runtime.mailbox",
    "relay_core.runtime.links",
    "relay_core.runtime.serving",
    "relay_core.runtime.dispatcher",
    "relay_core.runtime.plugin_set",
    "relay_core.runtime.linking",
    "relay_core.runtime.outbox",
    "relay_core.runtime.receiving",
    "relay_core.runtime.sending",
    "relay_core.observe.stats",
    "relay_core.runtime.rpc",
    "relay_core.runtime.backlog",
    "relay_core.runtime.inbox",
    "relay_core.observe.tracing",
    "relay_codecs._model",
    "relay_codecs._msgpack_fast",
    "relay_transports._budget",
    "relay_transports._tcp_packets",
    "relay_transports._udp_socket",
)
"""The per-message modules. Plugin modules cannot be among them (pluggy marks
hook functions by setting attributes on them, which compiled functions refuse),
so their per-message work moves to modules beside them: msgpack's fast paths
(whose bound methods each codec instance answers with), the udp socket's
reading and sending (whose ``send`` the transport answers with) and a tcp
connection's (whose ``data_received`` its protocol answers with). Nor
can the modules that check what a user passes to the public API (_address,
_actors): a compiled function checks its argument types itself, with a
TypeError instead of the library's own error. All of them import only the
standard library and the project's own modules: the build environment has none
of the optional dependencies (_tracing finds OpenTelemetry by name at run time,
as an untyped module, so it compiles without it)."""

PURE_PYTHON_ENV = "NET_RELAY_PURE_PYTHON"
DIGEST_FILE = "relay_core/_compiled.sha256"
"""Written by setup.py when it compiles: a digest of the sources it compiled."""
PACKAGES_ROOT = Path(__file__).resolve().parent.parent


def source_path(name: str) -> str:
    """Where a module's source lies, relative to the folder holding the packages."""
    return name.replace(".", "/") + ".py"


def _sources_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for name in COMPILED_MODULES:
        digest.update((root / source_path(name)).read_bytes())
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
