"""The listening socket and the logger of the ``quic`` transport.

Every part of the transport logs to one logger, named for the entry module
``relay_transports._quic``, so that one name configures (and documents) them all.
"""

from __future__ import annotations

import logging
import socket

from ._addresses import resolve

logger = logging.getLogger("relay_transports._quic")


async def _listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to host:port (port 0: any free one).

    Bound here rather than by ``create_datagram_endpoint``: when the bind fails,
    nothing is left open on any loop (uvloop would leak its half-made transport).
    Raises OSError for a failed bind, TransportError for a host that does not resolve.
    """
    family, sockaddr = (await resolve("quic", host, port, socket.SOCK_DGRAM))[0]
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
