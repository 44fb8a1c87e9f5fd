"""Which code may import which: the rules that keep the layers apart.

Plugins, the built-in ones too, are written against the public core alone
(``relay_core``, ``relay_core.errors``, ``relay_core.interfaces``,
``relay_core.hookspecs``, ``relay_core.testing``), so that a third-party
plugin can do all that a built-in one does. Checked on the source (AST).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_PACKAGES = ("relay_codecs", "relay_transports")
PUBLIC_CORE = frozenset({"relay_core", "relay_core.errors", "relay_core.interfaces",
                         "relay_core.hookspecs", "relay_core.testing"})
NOT_YET_PUBLIC = {
    # The stream framings (net-relay's length prefix, heph-json's objects) are still
    # chosen by the tcp and quic transports themselves; once the node hands a transport
    # its framing, these go.
    "relay_core._framing": {"_quic_connection.py", "_tcp_packets.py", "_tcp_route.py",
                            "_tcp_stream.py"},
    "relay_core._heph": {"_tcp_packets.py", "_tcp_stream.py"},
}


def core_imports(source: str) -> set[str]:
    """The ``relay_core`` modules that ``source`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return {name for name in found if name.partition(".")[0] == "relay_core"}


@pytest.mark.parametrize(
    "path",
    sorted(path for package in PLUGIN_PACKAGES for path in (ROOT / package).rglob("*.py")),
    ids=lambda path: str(path.relative_to(ROOT)))
def test_a_built_in_plugin_imports_only_public_core_modules(path: Path) -> None:
    private = {name for name in core_imports(path.read_text(encoding="utf-8"))
               if name not in PUBLIC_CORE
               and path.name not in NOT_YET_PUBLIC.get(name, ())}
    assert private == set(), f"{path.name} imports private core modules"


@pytest.mark.parametrize("source, expected", [
    ("from relay_core import Codec", {"relay_core"}),
    ("from relay_core._wire import Frame", {"relay_core._wire"}),
    ("import relay_core._seal as seal", {"relay_core._seal"}),
    ("def later():\n    from relay_core.errors import RelayError", {"relay_core.errors"}),
    ("from .errors import RelayError\nimport msgpack", set()),
])
def test_core_imports_finds_every_import_of_the_core(source: str, expected: set[str]) -> None:
    assert core_imports(source) == expected
