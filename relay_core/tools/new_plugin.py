"""``net-relay new-plugin KIND NAME``: a plugin package that installs, registers and passes
the kit as it is written, for its author to change.

The package is ``net-relay-NAME`` (import package ``net_relay_NAME``, entry point key
``NAME``). What each kind starts as:

- a compressor: zlib from the standard library, with its output bounded (the part a
  compressor most often gets wrong);
- a codec: the installed ``json`` codec under the new name, found through the public
  registry, so the package passes the kit before its format is written;
- a transport: datagrams over asyncio's UDP endpoint, unreliable, showing how events
  are reported and errors converted.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from relay_core.errors import ConfigError

__all__ = ["KINDS", "write_plugin"]

KINDS = ("codec", "compressor", "transport")
_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "net-relay-{name}"
version = "0.1.0"
description = "A net-relay {kind} plugin: {name}"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["net-relay"]

[project.optional-dependencies]
test = ["pytest>=8", "hypothesis>=6.100"]

# net-relay finds plugins through this group: the key is the name `net-relay plugins`
# shows (and an error names when the plugin fails to load), the value the hook module.
[project.entry-points.net_relay]
{name} = "{package}._plugin"

[tool.setuptools]
packages = ["{package}"]

[tool.setuptools.package-data]
{package} = ["py.typed"]

[tool.pytest.ini_options]
testpaths = ["tests"]
filterwarnings = ["error"]
"""

_README = """\
# net-relay-{name}

A {kind} plugin for net-relay, made by `net-relay new-plugin {kind} {name}`.

    pip install -e ".[test]"
    net-relay plugins            # lists {name}, from net-relay-{name} 0.1.0
    pytest                       # net-relay's conformance kit, and your own tests

See net-relay's docs/plugins.md for the contract this class keeps.
"""

_INIT = '''\
"""net-relay-{name}: a {kind} plugin for net-relay."""

from __future__ import annotations

from ._{kind} import {cls}

__all__ = ["{cls}"]
'''

_PLUGIN = '''\
"""The hook net-relay calls through the entry point: it returns the class, not an instance."""

from __future__ import annotations

from collections.abc import Sequence

from relay_core import {base}, hookimpl
from relay_core.hookspecs import PLUGIN_API_VERSION

from ._{kind} import {cls}

if PLUGIN_API_VERSION < 2:  # declared options came with version 2
    raise ImportError(f"net-relay-{name} needs net-relay's plugin API 2, not {{PLUGIN_API_VERSION}}")


@hookimpl
def net_relay_{kind}s() -> Sequence[type[{base}]]:
    return [{cls}]
'''

_COMPRESSOR = '''\
"""The {name} compressor. Invariant: decompress never holds more than max_output_size + 1
bytes, and every zlib error leaves as a net-relay error."""

from __future__ import annotations

import zlib
from typing import ClassVar

from relay_core import (
    Compressor,
    ConfigError,
    DecompressionError,
    DecompressionLimitExceeded,
    PluginOption,
)


class {cls}(Compressor):
    """Compresses frame payloads; options come from ``[compressors.{name}]``."""

    name: ClassVar[str] = "{name}"
    options: ClassVar[tuple[PluginOption, ...] | None] = (
        PluginOption("level", "integer", 6, "0 (store only) to 9 (smallest)."),
    )

    def __init__(self, *, level: int = 6) -> None:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
            raise ConfigError(f"level = {{level!r}} is not allowed: an integer from 0 to 9")
        self.level = level

    def compress(self, data: bytes) -> bytes | None:
        packed = zlib.compress(data, self.level)
        return packed if len(packed) < len(data) else None

    def decompress(self, data: bytes, max_output_size: int) -> bytes:
        stream = zlib.decompressobj()
        try:
            output = stream.decompress(data, max_output_size + 1)
        except zlib.error as exc:
            raise DecompressionError(f"corrupt {name} data: {{exc}}") from None
        if len(output) > max_output_size:
            raise DecompressionLimitExceeded(
                f"{name} data expands past the limit of {{max_output_size}} bytes")
        if not stream.eof or stream.unused_data:
            raise DecompressionError("truncated {name} data, or bytes after its end")
        return output
'''

_CODEC = '''\
"""The {name} codec. It starts as the installed json codec under a new name, so that the
package passes net-relay's kit at once: write your format in encode and decode."""

from __future__ import annotations

from typing import ClassVar

from relay_core import Codec, PluginOption, PluginRegistry


class {cls}(Codec):
    """Encodes messages as bytes; options come from ``[codecs.{name}]``."""

    name: ClassVar[str] = "{name}"
    options: ClassVar[tuple[PluginOption, ...] | None] = ()

    def __init__(self) -> None:
        self._inner = PluginRegistry.load().codec("json")

    def encode(self, obj: object) -> bytes:
        return self._inner.encode(obj)

    def decode(self, data: bytes) -> object:
        return self._inner.decode(data)
'''

_TRANSPORT = '''\
"""The {name} transport: datagrams over asyncio's UDP endpoint. Unreliable: packets may be
lost or reordered. Errors found after send returned go to events.send_failed; nothing
raises out of an asyncio callback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import ClassVar

from relay_core import (
    ConfigError,
    HostPort,
    MessageTooLarge,
    PluginOption,
    Transport,
    TransportError,
    TransportEvents,
)

_LARGEST = 65507


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, events: TransportEvents) -> None:
        self.events = events

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.events.packet_received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.events.send_failed(None, exc)


class {cls}(Transport):
    """Packets as datagrams; options come from ``[listen.{name}]``."""

    scheme: ClassVar[str] = "{name}"
    reliable: ClassVar[bool] = False
    options: ClassVar[tuple[PluginOption, ...] | None] = (
        PluginOption("max_datagram_size", "integer", 1400,
                     f"The largest packet sent or accepted, in bytes; 64..{{_LARGEST}}."),
    )

    def __init__(self, events: TransportEvents, *, max_datagram_size: int = 1400) -> None:
        super().__init__(events)
        if isinstance(max_datagram_size, bool) or not isinstance(max_datagram_size, int) \\
                or not 64 <= max_datagram_size <= _LARGEST:
            raise ConfigError(f"max_datagram_size = {{max_datagram_size!r}} is not allowed: "
                              f"an integer from 64 to {{_LARGEST}}")
        self.max_packet_size = self.batch_size = max_datagram_size
        self._endpoints: list[asyncio.DatagramTransport] = []
        self._closed = False

    async def listen(self, host: str, port: int) -> HostPort:
        endpoint = await self._open(host, port)
        name = endpoint.get_extra_info("sockname")
        return str(name[0]), int(name[1])

    async def prepare(self, host: str, port: int,
                      options: Mapping[str, object] | None = None) -> HostPort:
        self._check_open()
        if not self._endpoints:  # replies come back to the socket that sent
            await self._open("0.0.0.0", 0)
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, family=socket.AF_INET, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise TransportError(f"cannot resolve {name}://{{host}}:{{port}}: {{exc}}") from None
        return str(found[0][4][0]), int(found[0][4][1])

    def send(self, destination: HostPort, packet: bytes) -> None:
        self._check_open()
        if len(packet) > self.max_packet_size:
            raise MessageTooLarge(len(packet), self.max_packet_size)
        self._endpoints[0].sendto(packet, destination)

    async def close(self) -> None:
        self._closed = True
        for endpoint in self._endpoints:
            endpoint.close()
        self._endpoints.clear()

    async def _open(self, host: str, port: int) -> asyncio.DatagramTransport:
        self._check_open()
        try:
            endpoint, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Endpoint(self.events), local_addr=(host, port), family=socket.AF_INET)
        except OSError as exc:
            raise TransportError(f"cannot listen on {name}://{{host}}:{{port}}: {{exc}}") from None
        self._endpoints.append(endpoint)
        return endpoint

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("the {name} transport is closed")
'''

_TESTS = {
    "compressor": '''\
"""net-relay's conformance kit, run against this plugin: keep it, and add your own tests."""

from relay_core import Compressor
from relay_core.testing import CompressorConformance

from {package} import {cls}


class Test{cls}Conforms(CompressorConformance):
    def make_compressor(self) -> Compressor:
        return {cls}()
''',
    "codec": '''\
"""net-relay's conformance kit, run against this plugin: keep it, and add your own tests."""

from relay_core import Codec
from relay_core.testing import CodecConformance

from {package} import {cls}


class Test{cls}Conforms(CodecConformance):
    def make_codec(self) -> Codec:
        return {cls}()
''',
    "transport": '''\
"""net-relay's conformance kit, run against this plugin: keep it, and add your own tests."""

from relay_core import Transport, TransportEvents
from relay_core.testing import TransportConformance, TransportSetup

from {package} import {cls}


class Test{cls}Conforms(TransportConformance):
    def make_transport(self, events: TransportEvents) -> Transport:
        return {cls}(events)

    def transport_setup(self) -> TransportSetup:
        # asyncio's UDP endpoint does not say what the kernel dropped: the burst test
        # then checks that nothing crashes and nothing is invented, not the loss count.
        return TransportSetup(counts_losses=False)
''',
}

_SOURCES = {"compressor": _COMPRESSOR, "codec": _CODEC, "transport": _TRANSPORT}
_BASES = {"compressor": "Compressor", "codec": "Codec", "transport": "Transport"}


def write_plugin(kind: str, name: str, directory: Path) -> Path:
    """Write the package ``net-relay-NAME`` for a ``kind`` plugin into ``directory``;
    return its path. Raise ConfigError for an unknown kind, a bad name or a taken path."""
    if kind not in KINDS:
        raise ConfigError(f"unknown plugin kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not _NAME.fullmatch(name):
        raise ConfigError(f"plugin name {name!r} is not allowed: a lower-case letter, then up"
                          " to 31 lower-case letters, digits and '-' (it becomes a package,"
                          " a URL scheme and a config key)")
    root = directory / f"net-relay-{name}"
    if root.exists():
        raise ConfigError(f"{root} already exists; choose another directory or name")
    package = f"net_relay_{name.replace('-', '_')}"
    cls = "".join(part.capitalize() for part in name.split("-")) + kind.capitalize()
    fields = {"name": name, "kind": kind, "package": package, "cls": cls,
              "base": _BASES[kind]}
    files = {
        "pyproject.toml": _PYPROJECT, "README.md": _README,
        f"{package}/__init__.py": _INIT, f"{package}/_plugin.py": _PLUGIN,
        f"{package}/_{kind}.py": _SOURCES[kind], f"{package}/py.typed": "",
        f"tests/test_{package}_conforms.py": _TESTS[kind],
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(template).format(**fields), encoding="utf-8")
    return root
