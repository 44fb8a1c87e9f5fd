"""One bound, non-blocking ``udp`` socket: the per-datagram work of reading and sending.

:class:`Sockets` picks the socket of a destination's address family and
:class:`Endpoint` sends from it, holding back what the kernel will not take
yet; a :class:`DatagramReader` reads what a wakeup finds. Options, binding and
resolving are the transport's (:class:`relay_transports._udp.UdpTransport`).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import struct
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from relay_core.errors import MessageTooLarge, TransportError
from relay_core.interfaces import HostPort, TransportEvents

from ._addresses import display

__all__ = [
    "FULL_READS_BEFORE_GROWING",
    "READS_PER_WAKEUP",
    "SEND_BACKLOG_LIMIT",
    "DatagramReader",
    "Endpoint",
    "SockAddr",
    "Sockets",
]

SEND_BACKLOG_LIMIT: Final = 1 << 20
"""Bytes of packets a socket may hold back, beyond which new packets are dropped."""
RECEIVE_SIZE: Final = 65535  # above any UDP payload, so no datagram is ever truncated
READS_PER_WAKEUP: Final = 128  # bounds one reader callback, so a flood cannot starve the loop
FULL_READS_BEFORE_GROWING: Final = 8  # wakeups in a row that find at least their budget waiting
_WOULD_BLOCK: Final = (BlockingIOError, InterruptedError)
_TOO_LARGE_HINT: Final = "use a stream transport (tcp:// or quic://) for large messages"

# Linux reports ICMP errors to an unconnected UDP socket only with IP_RECVERR set,
# and then through its error queue. Python 3.11 lacks the constants; these are
# the values of <linux/in.h> and <linux/in6.h>.
USE_ERROR_QUEUE: Final = sys.platform == "linux"
RECVERR: Final = {socket.AF_INET: (socket.IPPROTO_IP, 11), socket.AF_INET6: (socket.IPPROTO_IPV6, 25)}
_ANCILLARY_SIZE: Final = 512
_EXTENDED_ERRNO: Final = struct.Struct("=I")  # ee_errno, the first field of struct sock_extended_err

SockAddr = tuple[str, int] | tuple[str, int, int, int]
Deliver = Callable[[bytes, tuple[str, int]], object]


def _send_error(destination: HostPort, error: OSError) -> TransportError:
    reason = error.strerror or str(error)
    return TransportError(error.errno, f"udp send to {display(*destination)} failed: {reason}")


class DatagramReader:
    """Reads the datagrams waiting on ``sock`` and hands each to ``deliver``.

    Reading until the socket is empty costs a recvfrom per wakeup that finds
    nothing, and its BlockingIOError: with one request or reply per wakeup it
    added a fifth to a round trip. So a wakeup reads at most a budget, and what
    it leaves is reported again by the selector at the next pass. The budget
    shrinks to the burst that emptied the socket and doubles once enough wakeups
    in a row have filled it, so one packet at a time meets an empty socket only
    every few wakeups, and a flood soon reads in bulk.
    """

    def __init__(
        self,
        sock: socket.socket,
        deliver: Deliver,
        on_nothing: Callable[[], object],
        on_error: Callable[[OSError], object],
    ) -> None:
        self.sock = sock
        self.recvfrom: Callable[[int], tuple[bytes, Any]] = sock.recvfrom
        self.read_budget = 1
        """Datagrams a wakeup reads at most."""
        self.full_reads = 0
        """Wakeups in a row that read their whole budget."""
        self._deliver = deliver
        self._v6 = sock.family == socket.AF_INET6
        self._on_nothing = on_nothing
        self._on_error = on_error

    def on_readable(self) -> None:
        recvfrom = self.recvfrom
        deliver = self._deliver
        budget = self.read_budget
        for count in range(budget):
            try:
                packet, source = recvfrom(RECEIVE_SIZE)
            except _WOULD_BLOCK:
                if count == 0:  # woken with nothing to read: only the error queue can have
                    self._on_nothing()
                else:
                    self.read_budget = count
                    self.full_reads = 0
                return
            except OSError as exc:
                self._on_error(exc)
                continue
            # An IPv6 source is (host, port, flowinfo, scope id): keep the pair.
            deliver(packet, (source[0], source[1]) if self._v6 else source)
        self.full_reads += 1
        if self.full_reads >= FULL_READS_BEFORE_GROWING:
            self.read_budget = min(2 * budget, READS_PER_WAKEUP)


class Endpoint:
    """One bound, non-blocking datagram socket, its reader and its send backlog."""

    def __init__(
        self, sock: socket.socket, loop: asyncio.AbstractEventLoop, events: TransportEvents
    ) -> None:
        self.sock = sock
        self.sendto: Callable[[bytes, SockAddr], int] = sock.sendto
        self.local: HostPort = sock.getsockname()[:2]
        self.backlog: deque[tuple[HostPort, bytes]] = deque()
        self.backlog_bytes = 0
        self._loop = loop
        self._events = events
        self.reader = DatagramReader(
            sock, events.packet_received, self._on_nothing_to_read, self._socket_error)
        self._rewatch_scheduled = False
        self._closed = False
        loop.add_reader(sock.fileno(), self.reader.on_readable)

    def send(self, destination: HostPort, packet: bytes) -> None:
        """Send one datagram now, or hold it back behind those already waiting."""
        if self.backlog_bytes:  # keeps packets in order behind those held back
            self.enqueue(destination, packet)
            return
        try:
            self.sendto(packet, destination)
        except OSError as exc:
            self._send_failed_at_once(destination, packet, exc)

    def _send_failed_at_once(self, destination: HostPort, packet: bytes, first: OSError) -> None:
        """Handle a sendto that raised: hold the packet back, report it, or raise."""
        error = first if isinstance(first, _WOULD_BLOCK) else self._send_again(destination, packet)
        if error is None:
            return
        if isinstance(error, _WOULD_BLOCK):
            self.enqueue(destination, packet)
        elif error.errno == errno.ENOBUFS:  # a full device queue: transient, like a lost packet
            self._events.send_failed(destination, _send_error(destination, error))
        else:
            raise _send_error(destination, error) from error

    def _send_again(self, destination: HostPort, packet: bytes) -> OSError | None:
        """Retry once after an error that may not be this packet's own.

        A pending ICMP error about an earlier packet fails the next sendto once
        (the error queue still reports it), and a scoped IPv6 host needs its
        scope id, which a ``(host, port)`` pair cannot carry.
        """
        try:
            self.sendto(packet, self._sockaddr(destination))
        except OSError as exc:
            return exc
        return None

    def _sockaddr(self, destination: HostPort) -> SockAddr:
        host, port = destination
        if "%" not in host:
            return destination
        try:
            infos = socket.getaddrinfo(host, port, self.sock.family, 0, 0, socket.AI_NUMERICHOST)
        except OSError:
            return destination  # sendto reports the address as it stands
        sockaddr = infos[0][4]
        return (host, port, 0, sockaddr[3]) if len(sockaddr) == 4 else destination

    def enqueue(self, destination: HostPort, packet: bytes) -> None:
        """Hold ``packet`` back until the socket is writable, unless the backlog is full."""
        if self.backlog_bytes + len(packet) > SEND_BACKLOG_LIMIT:
            text = f"send buffer full ({self.backlog_bytes} bytes waiting); packet dropped"
            self._events.send_failed(destination, TransportError(errno.ENOBUFS, text))
            return
        if not self.backlog:
            self._loop.add_writer(self.sock.fileno(), self._on_writable)
        self.backlog.append((destination, packet))
        self.backlog_bytes += len(packet) or 1  # an empty datagram waits too

    def _on_writable(self) -> None:
        while self.backlog:
            destination, packet = self.backlog[0]
            error = self._flush_one(destination, packet)
            if isinstance(error, _WOULD_BLOCK):
                return
            self.backlog.popleft()
            self.backlog_bytes -= len(packet) or 1
            if error is not None:
                self._events.send_failed(destination, _send_error(destination, error))
        self._loop.remove_writer(self.sock.fileno())

    def _flush_one(self, destination: HostPort, packet: bytes) -> OSError | None:
        """Send a held-back packet; return the error that kept it from leaving."""
        try:
            self.sendto(packet, destination)
        except _WOULD_BLOCK as exc:
            return exc
        except OSError:
            return self._send_again(destination, packet)
        return None

    def _on_nothing_to_read(self) -> None:
        """The loop woke the reader with nothing to read: perhaps only errors are queued."""
        if self._drain_error_queue():
            self._rewatch_soon()

    def _socket_error(self, error: OSError) -> None:
        """Report an error the socket raised on receive, about some earlier send."""
        if self._drain_error_queue() == 0:
            reason = error.strerror or str(error)
            text = f"udp socket {display(*self.local)}: {reason}"
            self._events.send_failed(None, TransportError(error.errno, text))
        self._rewatch_soon()

    def _rewatch_soon(self) -> None:
        """Watch the socket again once this wakeup is over.

        A queued error makes the poller report an error event, and libuv (so
        uvloop) answers one by running the reader once and then dropping the
        watch for good: the socket would never be read again. Registering the
        reader (and writer) anew after every wakeup that met an error keeps any
        loop watching; on a loop that kept its watch this costs one re-register.
        """
        if not self._rewatch_scheduled:
            self._rewatch_scheduled = True
            self._loop.call_soon(self._rewatch)

    def _rewatch(self) -> None:
        self._rewatch_scheduled = False
        if self._closed:
            return
        fd = self.sock.fileno()
        self._loop.remove_reader(fd)
        self._loop.add_reader(fd, self.reader.on_readable)
        if self.backlog:
            self._loop.remove_writer(fd)
            self._loop.add_writer(fd, self._on_writable)

    def _drain_error_queue(self) -> int:
        """Report each queued ICMP or local error against its packet's destination."""
        if not USE_ERROR_QUEUE:
            return 0
        reported = 0
        while True:
            try:
                _, ancillary, _, address = self.sock.recvmsg(
                    0, _ANCILLARY_SIZE, socket.MSG_ERRQUEUE
                )
            except OSError:
                return reported
            destination = (address[0], address[1])
            code = _extended_errno(ancillary)
            error = OSError(code, os.strerror(code))
            self._events.send_failed(destination, _send_error(destination, error))
            reported += 1

    def close(self) -> int:
        """Flush what the kernel takes at once, close the socket, return the packets lost."""
        self._closed = True
        fd = self.sock.fileno()
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        while self.backlog and self._flush_one(*self.backlog[0]) is None:
            self.backlog.popleft()
        self.sock.close()
        return len(self.backlog)


def _extended_errno(ancillary: list[tuple[int, int, bytes]]) -> int:
    for _, _, data in ancillary:
        if len(data) >= _EXTENDED_ERRNO.size:
            return int(_EXTENDED_ERRNO.unpack_from(data)[0])
    return errno.EIO


class Sockets:
    """The sending socket of each address family, and ``send`` through the right one."""

    def __init__(self, max_packet_size: int, cannot_send: Callable[[HostPort], Exception]) -> None:
        self.max_packet_size = max_packet_size
        self.v4: Endpoint | None = None
        self.v6: Endpoint | None = None
        self._cannot_send = cannot_send

    def send(self, destination: HostPort, packet: bytes) -> None:
        """Send one datagram, from the socket of the destination's address family."""
        if len(packet) > self.max_packet_size:
            raise MessageTooLarge(len(packet), self.max_packet_size, hint=_TOO_LARGE_HINT)
        endpoint = self.v6 if ":" in destination[0] else self.v4
        if endpoint is None:
            raise self._cannot_send(destination)
        endpoint.send(destination, packet)
