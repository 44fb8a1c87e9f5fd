"""The ``udp`` transport: packets as datagrams over non-blocking sockets.

Rules this module keeps:

- At most one *sending* socket per address family (IPv4, IPv6): the first one
  bound for that family, by :meth:`UdpTransport.listen` or else by
  :meth:`UdpTransport.prepare` (an ephemeral one on the wildcard address). Every
  packet to a destination of that family leaves from it, so the receiver can
  reply to the source address it saw. Further listeners of a family only receive.
- A source handed to ``events.packet_received`` is a ``(host, port)`` pair that
  :meth:`UdpTransport.send` accepts as is. A scoped IPv6 host keeps its ``%zone``
  suffix, which the send path turns back into a scope id.
- Nothing raises out of an event-loop callback and no socket error closes a
  socket: failures found after ``send`` returned go to ``events.send_failed``.
- A socket is read for as long as it is open: a wakeup that met a queued error
  registers the socket with the loop again, since uvloop (libuv) stops watching
  a socket after reporting an error event on it.
- The send backlog (packets the kernel would not take yet) is bounded; a packet
  that would pass the bound is dropped and reported, never queued.

Sockets are driven with ``loop.add_reader`` rather than asyncio's datagram
transport: one wakeup reads many datagrams instead of one, and an unconnected
socket learns of ICMP errors only through the Linux error queue (``IP_RECVERR``),
which asyncio never reads. This needs a selector event loop (the default on
POSIX, and uvloop); the Windows proactor loop has no ``add_reader``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Mapping

from relay_core import (
    ConfigError,
    HostPort,
    PluginOption,
    Transport,
    TransportError,
    TransportEvents,
)

from ._addresses import check_port, display, resolve
from ._receive_drops import socket_drops
from ._udp_socket import (
    RECVERR,
    SEND_BACKLOG_LIMIT,
    USE_ERROR_QUEUE,
    Endpoint,
    Sockets,
)

__all__ = ["SEND_BACKLOG_LIMIT", "UdpTransport"]

logger = logging.getLogger(__name__)

_MAX_DATAGRAM = 65507  # the largest UDP payload an IPv4 datagram can carry
_MAX_BUFFER = 2**31 - 1  # setsockopt takes a C int
_WILDCARD = {socket.AF_INET: "0.0.0.0", socket.AF_INET6: "::"}


def _option(name: str, value: object, low: int, high: int, allowed: str) -> int:
    """Return a ``[listen.udp]`` option that is an int in low..high, or raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"[listen.udp] {name} = {value!r} is not allowed: {allowed}")
    return value


DEFAULT_BATCH_SIZE = 1400


class UdpTransport(Transport):
    """Packets over UDP: unordered, may be lost or duplicated, each at most one datagram."""

    scheme = "udp"
    reliable = False
    options = (
        PluginOption("max_datagram_size", "integer", _MAX_DATAGRAM,
                     f"The largest datagram sent or accepted, in bytes; 64..{_MAX_DATAGRAM}."),
        PluginOption("batch_size", "integer", None,
                     f"Frames are coalesced into datagrams up to this size (default "
                     f"{DEFAULT_BATCH_SIZE}, or max_datagram_size if smaller)."),
        PluginOption("receive_buffer", "integer", 4 * 1024 * 1024,
                     "SO_RCVBUF of each socket, in bytes; 0: the OS default."),
        PluginOption("send_buffer", "integer", 4 * 1024 * 1024,
                     "SO_SNDBUF of each socket, in bytes; 0: the OS default."),
    )
    peer_options = ()  # a udp peer has only the keys every peer has

    def __init__(
        self,
        events: TransportEvents,
        *,
        max_datagram_size: int = _MAX_DATAGRAM,
        batch_size: int | None = None,
        receive_buffer: int = 4 * 1024 * 1024,
        send_buffer: int = 4 * 1024 * 1024,
    ) -> None:
        super().__init__(events)
        allowed = f"an integer from 64 to {_MAX_DATAGRAM}"
        size = _option("max_datagram_size", max_datagram_size, 64, _MAX_DATAGRAM, allowed)
        self.max_packet_size = size
        # 1400 bytes fits a 1500-byte Ethernet MTU after IP and UDP headers.
        wanted = min(DEFAULT_BATCH_SIZE, size) if batch_size is None else batch_size
        self.batch_size = _option(
            "batch_size", wanted, 64, size, f"an integer from 64 to max_datagram_size ({size})"
        )
        buffer = f"an integer from 0 (the OS default) to {_MAX_BUFFER}"
        self._buffers = {
            socket.SO_RCVBUF: _option("receive_buffer", receive_buffer, 0, _MAX_BUFFER, buffer),
            socket.SO_SNDBUF: _option("send_buffer", send_buffer, 0, _MAX_BUFFER, buffer),
        }
        self._endpoints: list[Endpoint] = []
        self._drops_of_closed = 0
        self._sockets = Sockets(size, self._cannot_send)
        self.send = self._sockets.send  # type: ignore[method-assign]
        self._closed = False

    async def listen(self, host: str, port: int) -> HostPort:
        """Receive on host:port (port 0 picks a free port); return the address bound."""
        family, sockaddr = await self._resolve(host, port, socket.AI_PASSIVE)
        return self._open(family, sockaddr, host, port).local

    async def prepare(
        self, host: str, port: int, options: Mapping[str, object] | None = None
    ) -> HostPort:
        """Resolve host:port to a numeric destination and make sure a socket can send to it.

        With no socket of the destination's family yet, this binds an ephemeral
        one on the wildcard address; it sends, and receives the replies. UDP
        peers take no ``options`` (the inherited ``check_peer_options`` refuses any).
        """
        family, sockaddr = await self._resolve(host, port, 0)
        if self._sender(family) is None:
            self._open(family, (_WILDCARD[family], 0), _WILDCARD[family], 0)
        return sockaddr

    def send(self, destination: HostPort, packet: bytes) -> None:
        """Send one datagram, from the socket of the destination's address family.

        A packet that cannot leave at once waits (in order, up to
        ``SEND_BACKLOG_LIMIT`` bytes a socket) until the socket is writable.
        """
        self._sockets.send(destination, packet)

    def receive_drops(self) -> int:
        """Datagrams the kernel dropped at a full receive buffer of this transport's sockets."""
        return self._drops_of_closed + sum(
            socket_drops(endpoint.sock) or 0 for endpoint in self._endpoints)

    async def close(self) -> None:
        """Close every socket; packets still held back are reported as lost."""
        if self._closed:
            return
        self._drops_of_closed = self.receive_drops()
        self._closed = True
        self._sockets.v4 = self._sockets.v6 = None
        lost = sum(endpoint.close() for endpoint in self._endpoints)
        self._endpoints.clear()
        if lost:
            text = f"udp transport closed with {lost} packets unsent"
            self.events.send_failed(None, TransportError(errno.ESHUTDOWN, text))

    def _sender(self, family: int) -> Endpoint | None:
        return self._sockets.v6 if family == socket.AF_INET6 else self._sockets.v4

    def _cannot_send(self, destination: HostPort) -> TransportError:
        where = display(*destination)
        if self._closed:
            return TransportError(f"cannot send to udp {where}: the transport is closed")
        return TransportError(
            f"cannot send to udp {where}: no socket of its address family;"
            " call prepare() for a destination before sending to it"
        )

    async def _resolve(
        self, host: str, port: int, flags: int
    ) -> tuple[socket.AddressFamily, HostPort]:
        """Return a family and numeric address for host:port, preferring a family we can send from."""
        if self._closed:
            raise TransportError(f"udp {display(host, port)}: the transport is closed")
        check_port("udp", host, port, 0)
        found = await resolve("udp", host, port, socket.SOCK_DGRAM, flags)
        return next((item for item in found if self._sender(item[0])), found[0])

    def _open(
        self, family: socket.AddressFamily, sockaddr: HostPort, host: str, port: int
    ) -> Endpoint:
        sock = _bind(family, sockaddr, display(host, port), self._buffers)
        endpoint = Endpoint(sock, asyncio.get_running_loop(), self.events)
        self._endpoints.append(endpoint)
        if self._sender(family) is None:
            if family == socket.AF_INET6:
                self._sockets.v6 = endpoint
            else:
                self._sockets.v4 = endpoint
        return endpoint


def _bind(
    family: socket.AddressFamily, sockaddr: HostPort, where: str, buffers: dict[int, int]
) -> socket.socket:
    """Return a non-blocking socket bound to ``sockaddr``; errors name ``where`` the user asked for."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if family == socket.AF_INET6:  # so a v4 and a v6 listener can share a port
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if USE_ERROR_QUEUE:
            sock.setsockopt(*RECVERR[family], 1)
        for option, size in buffers.items():
            _request_buffer(sock, option, size)
        sock.bind(sockaddr)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise TransportError(exc.errno, f"cannot listen on udp {where}: {reason}") from exc
    return sock


def _request_buffer(sock: socket.socket, option: int, size: int) -> None:
    """Ask for a socket buffer size; the kernel may grant less (Linux caps it at net.core.*mem_max)."""
    name = "receive" if option == socket.SO_RCVBUF else "send"
    if size == 0:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, size)
    except OSError as exc:
        logger.debug(
            "udp %s buffer: the OS refused %d bytes (%s); kept its default", name, size, exc
        )
        return
    granted = sock.getsockopt(socket.SOL_SOCKET, option)
    logger.debug("udp %s buffer: requested %d bytes, the OS reports %d", name, size, granted)
