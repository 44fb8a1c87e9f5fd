"""Host and port, for every built-in transport: shown, checked and resolved one way.

Errors name the scheme and the address as the user wrote it (``udp [::1]:9``),
so a message reads the same whichever transport raised it.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Final

from relay_core import HostPort, TransportError

__all__ = ["IP_FAMILIES", "check_port", "display", "resolve"]

IP_FAMILIES: Final = (socket.AF_INET, socket.AF_INET6)


def display(host: str, port: object) -> str:
    """``host:port`` as a user writes it, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_port(scheme: str, host: str, port: object, low: int) -> None:
    """Raise :class:`TransportError` unless ``port`` is an integer from ``low`` to 65535."""
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        raise TransportError(
            f"{scheme} {display(host, port)}: port must be an integer from {low} to 65535")


async def resolve(scheme: str, host: str, port: int, kind: socket.SocketKind,
                  flags: int = 0) -> list[tuple[socket.AddressFamily, HostPort]]:
    """The IPv4 and IPv6 addresses of host:port, in the resolver's order (never empty).

    A numeric host is read at once; a name goes to the event loop's resolver, so
    a slow DNS server does not block the loop. Raise :class:`TransportError`
    saying why a host does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, 0, kind, 0, flags | socket.AI_NUMERICHOST)
    except (OSError, UnicodeError, ValueError):
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=kind, flags=flags)
        except (OSError, UnicodeError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise TransportError(
                f"cannot resolve {scheme} {display(host, port)}: {reason}") from None
    found: list[tuple[socket.AddressFamily, HostPort]] = [(family, (str(sockaddr[0]), int(sockaddr[1])))
             for family, _, _, _, sockaddr in infos if family in IP_FAMILIES]
    if not found:
        raise TransportError(f"cannot resolve {scheme} {display(host, port)}: no IP address")
    return found
