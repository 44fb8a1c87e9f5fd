"""The per-packet work of one ``tcp`` connection: cutting what it reads into packets, and writing.

Compiled by the build (relay_core._compiled), so the loop's ``data_received``
runs native code from the chunk read to ``packet_received``, and a send runs
native code from the dispatcher (:class:`Sender`, whose ``send`` the transport
answers with) to the socket transport's write. The connection's
``asyncio.Protocol`` (relay_transports._tcp_stream._Stream) cannot be compiled
(mypyc compiles no subclass of a Python class): it answers ``data_received``
with the bound method of its :class:`PacketIO`, and keeps the rest (opening,
closing, flow control of writes, the idle timer). Routes keep their queues
(relay_transports._tcp_route).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from relay_core._errors import MalformedFrame, MessageTooLarge, TransportError
from relay_core._framing import StreamDeframer, frame_for_stream, length_prefix
from relay_core._heph import HephObjectSplitter, is_heph_json
from relay_core._interfaces import HostPort

from ._tcp_net import _display
from ._tcp_options import HEPH_JSON

__all__ = ["JOIN_BELOW", "Deliver", "PacketIO", "Route", "Sender"]

Deliver = Callable[[bytes, HostPort], "asyncio.Future[None] | None"]
"""``events.packet_received``: a future when the node wants reading held back until it is done."""

JOIN_BELOW: Final = 4096
"""A packet smaller than this is written joined to its length prefix, a larger one
beside it: copying a few KiB costs less than a second buffer (with uvloop, its
write context), and avoiding a copy of more pays."""


class PacketIO:
    """Splits what one connection reads into packets for the node; writes packets to it.

    Reading is the node's to slow: when ``deliver`` returns a future, reading
    pauses until that future completes (the node completes its futures in
    order, so the latest one is the one to wait for), while the packets of the
    chunk already read are still handed over.
    """

    def __init__(
        self,
        splitter: StreamDeframer | HephObjectSplitter,
        deliver: Deliver,
        source: HostPort,
        malformed: Callable[[MalformedFrame], object],
    ) -> None:
        self.splitter = splitter
        self.prefixed = isinstance(splitter, StreamDeframer)
        """Whether a packet travels after its length (else it is a heph-json object, as is)."""
        self.source = source
        """Handed to ``deliver`` with every packet."""
        self.transport: asyncio.Transport | None = None
        """What reads and writes, from connection_made until connection_lost."""
        self.paused = False
        """Whether the write buffer is above its high-water mark: packets wait in the route."""
        self.active = True
        """Whether a byte was read or written since the idle timer last looked."""
        self.received = False
        """Whether a byte ever arrived."""
        self.failed = False
        """Whether the input was malformed: nothing more is read."""
        self.waiting: asyncio.Future[None] | None = None
        """What reading waits for (the node's latest future), or None while reading."""
        self._deliver = deliver
        self._malformed = malformed

    def data_received(self, data: bytes) -> None:
        if self.failed:
            return
        self.active = self.received = True
        for packet in self._split(data):
            waiting = self._deliver(packet, self.source)
            if waiting is not None and waiting is not self.waiting:
                self._wait_for(waiting)
        if self.splitter.failed and not self.failed:
            self._split(b"")  # raises the fault found after those packets

    def write(self, packet: bytes) -> None:
        """Write ``packet``, after its length unless it is heph-json."""
        transport = self.transport
        assert transport is not None  # routes write only to connected streams
        self.active = True
        if not self.prefixed:
            transport.write(packet)
        elif len(packet) < JOIN_BELOW:
            transport.write(frame_for_stream(packet))
        else:  # uvloop writes the two with one writev, without a joined copy
            transport.writelines((length_prefix(packet), packet))

    def _split(self, data: bytes) -> list[bytes]:
        """The packets ``data`` completes; none, and the fault reported, if it is malformed."""
        try:
            return self.splitter.feed(data)
        except MalformedFrame as exc:
            self.failed = True
            self._malformed(exc)
            return []

    def _wait_for(self, waiting: asyncio.Future[None]) -> None:
        """Stop reading until ``waiting`` is done."""
        if self.waiting is None and self.transport is not None:
            self.transport.pause_reading()
        self.waiting = waiting
        waiting.add_done_callback(self._read_again)

    def _read_again(self, done: asyncio.Future[None]) -> None:
        if done is not self.waiting:
            return  # an earlier future: a later one still holds reading
        self.waiting = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()


class Route(Protocol):
    """What :class:`Sender` needs of a destination's route (``_tcp_route._Route``)."""

    framing: str
    writer: PacketIO | None
    """Its connection's, while nothing waits in its queue; else None."""

    def hold(self, packet: bytes) -> None:
        """Queue ``packet`` until the connection takes it (or report it dropped)."""


class Sender:
    """``send`` for the transport: checks a packet and hands it to its destination's route."""

    def __init__(
        self,
        routes: Mapping[HostPort, Route],
        max_packet_size: int,
        cannot_send: Callable[[HostPort], Exception],
    ) -> None:
        self.routes = routes
        self.max_packet_size = max_packet_size
        self._cannot_send = cannot_send

    def send(self, destination: HostPort, packet: bytes) -> None:
        """Write one packet on the destination's connection, or queue it until it can be."""
        if len(packet) > self.max_packet_size:
            raise MessageTooLarge(len(packet), self.max_packet_size)
        route = self.routes.get(destination)
        if route is None:
            raise self._cannot_send(destination)
        if not packet:
            raise TransportError("tcp cannot carry an empty packet: a packet has 1 byte or more")
        if route.framing == HEPH_JSON and not is_heph_json(packet):
            raise TransportError(
                f"cannot send to tcp {_display(*destination)}: it speaks heph-json, so a packet"
                f" must be one JSON object, starting with b'{{'; this one starts {packet[:8]!r}"
            )
        writer = route.writer
        if writer is not None and not writer.paused:
            writer.write(packet)  # which frames it
        else:
            route.hold(packet)
