"""The built-in transports as plugins: what their ``net_relay`` entry points load.

Each entry point names one attribute of this module (``relay_transports._plugin:quic``),
made when it is first asked for, which is when the module holding that transport
is imported: a missing library (aioquic, say) makes only its own transport
unavailable, listed with the error by ``net-relay plugins``, and the rest load.

The hook function lives here rather than beside the transports because pluggy
marks each hook function with an attribute, which a function of a compiled module
refuses (relay_core._compiled), and the transports' modules may be compiled.
"""

from __future__ import annotations

import importlib

from relay_core import Transport, hookimpl

__all__ = ["BuiltinTransport"]


class BuiltinTransport:
    """One built-in transport plugin: the transport class for one scheme."""

    def __init__(self, transport: type[Transport]) -> None:
        self._transport = transport

    @hookimpl
    def net_relay_transports(self) -> list[type[Transport]]:
        return [self._transport]


_PROVIDERS: dict[str, tuple[str, str]] = {
    # entry point (the scheme): (module, class)
    "udp": ("._udp", "UdpTransport"),
    "tcp": ("._tcp", "TcpTransport"),
    "quic": ("._quic", "QuicTransport"),
}


def __getattr__(name: str) -> BuiltinTransport:
    provider = _PROVIDERS.get(name)
    if provider is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, cls = provider
    return BuiltinTransport(getattr(importlib.import_module(module, __package__), cls))
