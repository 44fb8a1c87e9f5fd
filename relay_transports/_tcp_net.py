"""Addresses, OS errors and sockets for the ``tcp`` transport, in the words a user reads.

Every part of the transport logs to one logger, named for the entry module
``relay_transports._tcp``, so that one name configures (and documents) them all.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import ssl
from typing import Any

from relay_core import HostPort, TransportError

from ._tls import describe_tls_error

logger = logging.getLogger("relay_transports._tcp")

_KEEPALIVE_PROBES = 3


def _display(host: str, port: object) -> str:
    """``host:port`` as a user writes it, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(error: BaseException) -> str:
    """Why ``error`` happened, in words (asyncio puts addresses, not reasons, in strerror)."""
    if isinstance(error, ssl.SSLError):
        return describe_tls_error(error)
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    if isinstance(error, ConnectionResetError):
        return "connection reset by the peer"
    return str(error) or type(error).__name__


def _error(code: int | None, text: str) -> TransportError:
    """A TransportError that carries ``code`` as its errno when there is one."""
    return TransportError(text) if code is None else TransportError(code, text)


def _tune(sock: Any, keepalive: float) -> None:
    """Turn Nagle off and keepalive on, with the knobs this platform has."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not keepalive:
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        idle = max(1, math.ceil(keepalive))
        knobs = (
            (getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", None)), idle),
            (getattr(socket, "TCP_KEEPINTVL", None), max(1, idle // _KEEPALIVE_PROBES)),
            (getattr(socket, "TCP_KEEPCNT", None), _KEEPALIVE_PROBES),
        )
        for option, value in knobs:
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:
        logger.debug("tcp socket options not applied: %s", exc)


def _check_port(where: str, port: object, low: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        raise TransportError(f"tcp {where}: port must be an integer from {low} to 65535")


async def _resolve(host: str, port: int) -> HostPort:
    """A numeric address for host:port: literals at once, names with the loop's resolver."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise TransportError(
                f"cannot resolve tcp {_display(host, port)}: {_reason(exc)}"
            ) from None
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return (str(sockaddr[0]), int(sockaddr[1]))
    raise TransportError(f"cannot resolve tcp {_display(host, port)}: no IP address")
