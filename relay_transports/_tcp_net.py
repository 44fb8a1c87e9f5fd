"""Addresses, OS errors and sockets for the ``tcp`` transport, in the words a user reads.

Every part of the transport logs to one logger, named for the entry module
``relay_transports._tcp``, so that one name configures (and documents) them all.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import ssl
from typing import Any

from relay_core import TransportError

from ._tls import describe_tls_error

logger = logging.getLogger("relay_transports._tcp")

_KEEPALIVE_PROBES = 3


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
