"""Addresses for the ``quic`` transport: how one is shown, and how a name becomes one.

Every part of the transport logs to one logger, named for the entry module
``relay_transports._quic``, so that one name configures (and documents) them all.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from relay_core import HostPort, TransportError

logger = logging.getLogger("relay_transports._quic")


def _display(host: str, port: object) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _resolve(host: str, port: int) -> HostPort:
    """A numeric address for host:port (port 1 to 65535): literals at once, names with the
    loop's resolver."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise TransportError(f"quic {_display(host, port)}: port must be from 1 to 65535")
    return (await _first_address(host, port))[1]


async def _listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to host:port (port 0: any free one).

    Bound here rather than by ``create_datagram_endpoint``: when the bind fails,
    nothing is left open on any loop (uvloop would leak its half-made transport).
    Raises OSError for a failed bind, TransportError for a host that does not resolve.
    """
    family, sockaddr = await _first_address(host, port)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if family == socket.AF_INET6:  # so a v4 and a v6 listener can share a port
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


async def _first_address(host: str, port: int) -> tuple[socket.AddressFamily, HostPort]:
    """host:port's first IP address and its family: literals at once, names with the loop's
    resolver."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM, 0,
                                   socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        infos = await _lookup(host, port)
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return family, (str(sockaddr[0]), int(sockaddr[1]))
    raise TransportError(f"cannot resolve quic {_display(host, port)}: no IP address")


async def _lookup(host: str, port: int) -> list[tuple[Any, ...]]:
    try:
        return list(await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                 type=socket.SOCK_DGRAM))
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TransportError(f"cannot resolve quic {_display(host, port)}: {reason}") from exc
