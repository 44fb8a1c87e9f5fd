"""net-relay's built-in transports, each a plugin found through the ``net_relay`` entry points.

``udp`` (the default) lives in :mod:`relay_transports._udp`, ``tcp`` in
:mod:`relay_transports._tcp` and ``quic`` in :mod:`relay_transports._quic`.
``TcpTransport`` and ``QuicTransport`` are imported on first use, so that
importing this package never loads aioquic for a node that does not use QUIC.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._udp import UdpTransport

if TYPE_CHECKING:
    from ._quic import QuicTransport
    from ._tcp import TcpTransport

__all__ = ["QuicTransport", "TcpTransport", "UdpTransport"]

_LAZY = {"QuicTransport": "._quic", "TcpTransport": "._tcp"}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
