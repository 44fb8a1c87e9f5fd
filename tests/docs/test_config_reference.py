"""docs/config.md lists every key the code accepts, in the table it belongs to, and no other.

The accepted keys come from the code's own tables (the config module's key
checks, the keys the node takes out of listener and peer tables, each built-in
transport's constructor and peer options, each built-in codec's and compressor's
constructor), so a key added to the code without a line in the docs fails here.
A key counts as listed when it opens a row (``| `key` |``) of a table under the
heading that names its table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from markdown_blocks import ROOT

from relay_core import Transport
from relay_core.config import node_config, security
from relay_core.plugins.checks import option_parameters
from relay_core.plugins.registry import PluginRegistry
from relay_transports import _quic_options, _tcp_options

CONFIG_DOC = ROOT / "docs" / "config.md"
BUILT_IN_PACKAGES = ("relay_transports", "relay_codecs")
_ROW = re.compile(r"^\| ((?:`[A-Za-z0-9_]+`(?:, )?)+) \|")
"""A table row whose first cell names one key or several: ``| `certificate`, `private_key` |``."""
PEER_OPTION_TABLES = {"tcp": _tcp_options._PEER_OPTIONS, "quic": _quic_options._PEER_KEYS}
"""Where a built-in transport keeps the keys its check_peer_options takes."""


def documented_sections() -> dict[str, set[str]]:
    """Table name -> the keys opening the table rows under a heading that names it.

    A heading names tables before any ": ", separated by commas: ``### `[codecs.cbor]`,
    `[codecs.json]` `` or ``### `[listen.quic]`: how many clients``.
    """
    sections: dict[str, set[str]] = {}
    names: list[str] = []
    in_code = False
    for line in CONFIG_DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif in_code:
            continue
        elif line.startswith("#"):
            names = line.lstrip("#").strip().split(": ")[0].split(", ")
            for name in names:
                sections.setdefault(name, set())
        elif (row := _ROW.match(line)) is not None:
            for name in names:
                sections[name].update(re.findall(r"`([^`]+)`", row[1]))
    return sections


def built_ins(kind: str) -> list[str]:
    """The names of the plugins of ``kind`` that net-relay's own packages provide."""
    registry = PluginRegistry.load()
    classes = {"transport": registry.transport_class, "codec": registry.codec_class,
               "compressor": registry.compressor_class}[kind]
    return sorted(info.name for info in registry.plugins() if info.kind == kind
                  and classes(info.name).__module__.startswith(BUILT_IN_PACKAGES))


def option_names(cls: type) -> set[str]:
    """What the registry fills from a config table: the keyword parameters of ``cls(...)``."""
    return {parameter.name for parameter in option_parameters(cls, cls.__name__)}


def accepted_tables() -> Iterator[tuple[str, set[str]]]:
    """(the heading that must list them, the keys the code accepts there)."""
    registry = PluginRegistry.load()
    yield "`[node]`", set(node_config._NODE_KEYS)
    yield "`[listen.SCHEME]`", set(node_config._LISTEN_KEYS) | security.NODE_LISTEN_KEYS
    yield "`[peers.NAME]`", set(node_config._PEER_KEYS) | security.NODE_PEER_KEYS
    for scheme in built_ins("transport"):
        transport = registry.transport_class(scheme)
        yield f"`[listen.{scheme}]`", option_names(transport)
        if scheme in PEER_OPTION_TABLES:
            yield f"`[peers.NAME]` with a `{scheme}://` address", set(PEER_OPTION_TABLES[scheme])
    for name in built_ins("codec"):
        yield f"`[codecs.{name}]`", option_names(registry.codec_class(name))
    for name in built_ins("compressor"):
        yield f"`[compressors.{name}]`", option_names(registry.compressor_class(name))


TABLES = dict(accepted_tables())


@pytest.mark.parametrize("heading", TABLES)
def test_every_key_the_code_accepts_is_listed_under_its_table(heading: str) -> None:
    sections = documented_sections()
    assert heading in sections or not TABLES[heading], f"docs/config.md needs a {heading} section"
    assert sorted(TABLES[heading] - sections.get(heading, set())) == []


@pytest.mark.parametrize("heading", TABLES)
def test_no_key_is_listed_that_its_table_refuses(heading: str) -> None:
    listed = documented_sections().get(heading, set())
    assert sorted(listed - TABLES[heading]) == []


def test_the_transports_without_a_peer_option_table_take_no_peer_options() -> None:
    registry = PluginRegistry.load()
    for scheme in built_ins("transport"):
        check = registry.transport_class(scheme).check_peer_options.__func__  # type: ignore[attr-defined]
        if scheme not in PEER_OPTION_TABLES:
            assert check is Transport.check_peer_options.__func__  # type: ignore[attr-defined]


def test_the_built_ins_are_all_there() -> None:
    assert built_ins("transport") == ["quic", "tcp", "udp"]
    assert built_ins("codec") == ["cbor", "json", "msgpack"]
    assert built_ins("compressor") == ["none", "zstd"]
