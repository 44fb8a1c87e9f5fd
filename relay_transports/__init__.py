"""net-relay's built-in transports, each a plugin found through the ``net_relay`` entry points.

``udp`` (the default) lives in :mod:`relay_transports._udp`.
"""

from __future__ import annotations

from ._udp import UdpTransport

__all__ = ["UdpTransport"]
