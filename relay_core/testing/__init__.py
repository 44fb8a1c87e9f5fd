"""The plugin author's kit: conformance suites for codecs, compressors and transports,
and an in-memory transport for tests.

Subclass a suite in a ``Test*`` class and say how to make your plugin; pytest
collects the inherited tests::

    from relay_core.testing import CompressorConformance

    class TestZlib(CompressorConformance):
        def make_compressor(self):
            return ZlibCompressor(level=6)

The suites need pytest and hypothesis (net-relay's ``test`` extra). Each name
is imported on first use, so ``MemoryNetwork`` and ``memory_plugin`` work
without them, and ``import relay_core`` never imports this package at all.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

_SUITES = ("_codec_suite", "_compressor_suite", "_transport_suite", "_registration")
if "pytest" in sys.modules:
    # The suites' plain asserts are rewritten like a test module's, so that a failure says
    # what it got and what it expected. This must happen before they are first imported
    # (they are imported lazily, below); outside pytest there is nothing to rewrite.
    sys.modules["pytest"].register_assert_rewrite(*(f"{__name__}.{name}" for name in _SUITES))

if TYPE_CHECKING:
    from ._codec_suite import CodecConformance
    from ._compressor_suite import CompressorConformance
    from ._memory import MemoryNetwork, MemoryTransport, memory_plugin
    from ._recorder import PacketRecorder
    from ._transport_suite import TransportConformance, TransportSetup

__all__ = [
    "CodecConformance",
    "CompressorConformance",
    "MemoryNetwork",
    "MemoryTransport",
    "PacketRecorder",
    "TransportConformance",
    "TransportSetup",
    "memory_plugin",
]

_HOMES = {
    "CodecConformance": "._codec_suite",
    "CompressorConformance": "._compressor_suite",
    "MemoryNetwork": "._memory",
    "MemoryTransport": "._memory",
    "PacketRecorder": "._recorder",
    "TransportConformance": "._transport_suite",
    "TransportSetup": "._transport_suite",
    "memory_plugin": "._memory",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
