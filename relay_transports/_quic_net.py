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
    where = _display(host, port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise TransportError(f"quic {where}: port must be from 1 to 65535")
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM, 0,
                                   socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        infos = await _lookup(host, port)
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return str(sockaddr[0]), int(sockaddr[1])
    raise TransportError(f"cannot resolve quic {where}: no IP address")


async def _lookup(host: str, port: int) -> list[tuple[Any, ...]]:
    try:
        return list(await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                 type=socket.SOCK_DGRAM))
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TransportError(f"cannot resolve quic {_display(host, port)}: {reason}") from exc
