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

from relay_core.errors import MalformedFrame, MessageTooLarge, TransportError
from relay_core.interfaces import HostPort
from relay_core.protocol.framing import StreamDeframer, frame_for_stream
from relay_core.protocol.heph import is_heph_json
from relay_core.protocol.heph_stream import HephObjectSplitter

from ._addresses import display
from ._budget import InputBudget
from ._tcp_options import HEPH_JSON

__all__ = ["TURN_BUDGET", "Deliver", "PacketIO", "Route", "Sender"]

Deliver = Callable[[bytes, HostPort], "asyncio.Future[None] | None"]
"""``events.packet_received``: a future when the node wants reading held back until it is done."""

TURN_BUDGET: Final = 32 * 1024
"""Bytes of packets one connection hands the node per turn of the event loop, about.

The loop reads a stream in chunks of up to 256 KiB, several in a row: thousands
of small messages. Handed over at once, they would keep every other task
waiting (a flood could starve the loop) and pile up in mailboxes faster than
their actors run, which costs the garbage collector a pass over each of them.
What a chunk holds beyond this waits for the next turn, with reading paused.
"""


class PacketIO:
    """Splits what one connection reads into packets for the node; writes packets to it.

    Reading is the node's to slow: when ``deliver`` returns a future, reading
    pauses until that future completes (the node completes its futures in
    order, so the latest one is the one to wait for), while the packets of the
    chunk already read are still handed over. A turn of the loop hands over
    about :data:`TURN_BUDGET` bytes; the rest of a chunk is held, in order,
    for the next turns, and reading pauses until it has all been handed over.
    """

    def __init__(
        self,
        splitter: StreamDeframer | HephObjectSplitter,
        deliver: Deliver,
        source: HostPort,
        malformed: Callable[[MalformedFrame], object],
        budget: InputBudget,
        over_budget: Callable[[], object],
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
        """Whether the input was malformed or over budget: nothing more is read."""
        self.delivered = False
        """Whether a whole packet was ever handed to the node."""
        self.charged = 0
        """Bytes of the unfinished packet this connection holds against ``budget``."""
        self.budget = budget
        self.waiting: asyncio.Future[None] | None = None
        """What reading waits for (the node's latest future), or None."""
        self.held: list[bytes] = []
        """Packets read but left for a later turn of the loop, oldest first."""
        self.unsplit: list[bytes] = []
        """Chunks that came while packets were held (before reading paused), oldest first."""
        self._reading = True
        """Whether reading is on (paused while the node waits or packets are held)."""
        self._deliver = deliver
        self._malformed = malformed
        self._over_budget = over_budget

    @property
    def holding_back(self) -> bool:
        """Whether reading is held back: for the node, or for packets not yet handed over."""
        return self.waiting is not None or bool(self.held) or bool(self.unsplit)

    def data_received(self, data: bytes) -> None:
        if self.failed:
            return
        self.active = self.received = True
        if self.held or self.unsplit:
            # Behind packets still held. Split later, so that a fault in it is
            # reported after them, as it would have been had they gone at once.
            self.unsplit.append(data)
        else:
            self._hand_over(self._split(data))

    def drop_held(self) -> None:
        """Forget what was read but not handed over: the connection is being closed here."""
        self.held = []
        self.unsplit = []

    def release(self) -> None:
        """Give back this connection's charge and let go of its unfinished packet: it is gone."""
        self.budget.give_back(self.charged)
        self.charged = 0
        self.splitter.discard()

    def _hand_over(self, packets: list[bytes]) -> None:
        """Hand ``packets`` to the node, holding what exceeds this turn's budget."""
        budget = TURN_BUDGET
        last = len(packets) - 1
        if packets:
            self.delivered = True
        for index, packet in enumerate(packets):
            waiting = self._deliver(packet, self.source)
            if waiting is not None and waiting is not self.waiting:
                self._wait_for(waiting)
            budget -= len(packet)
            if budget <= 0 and index < last:
                self.held = packets[index + 1 :]
                self._stop_reading()
                asyncio.get_running_loop().call_soon(self._next_turn)
                return
        if self.splitter.failed and not self.failed:
            self._split(b"")  # raises the fault found after those packets

    def _next_turn(self) -> None:
        packets, self.held = self.held, []
        if packets:
            self._hand_over(packets)
        while not self.held and self.unsplit and not self.failed:
            self._hand_over(self._split(self.unsplit.pop(0)))
        self._read_if_free()

    def write(self, packet: bytes) -> None:
        """Write ``packet``, after its length unless it is heph-json.

        Always one ``write`` of the packet joined to its prefix, never
        ``writelines``: CPython 3.12 and 3.13.0's selector transports do not
        pause their protocol for what ``writelines`` buffers (gh-127655), so
        the write buffer would grow past its high-water mark unseen. The copy
        costs about what a second buffer would.
        """
        transport = self.transport
        assert transport is not None  # routes write only to connected streams
        self.active = True
        transport.write(frame_for_stream(packet) if self.prefixed else packet)

    def _split(self, data: bytes) -> list[bytes]:
        """The packets ``data`` completes; none, and the fault reported, if it is malformed."""
        try:
            packets = self.splitter.feed(data)
        except MalformedFrame as exc:
            self.failed = True
            self._malformed(exc)
            return []
        self._charge()
        return packets

    def _charge(self) -> None:
        """Charge the budget with what the splitter holds now; past it, give up the connection
        (after the packets this chunk completed, which are whole and go to the node)."""
        buffered = self.splitter.buffered
        over = self.budget.charge(self.charged, buffered)
        self.charged = buffered
        if over:
            self.failed = True
            self.release()
            self._over_budget()

    def _wait_for(self, waiting: asyncio.Future[None]) -> None:
        """Stop reading until ``waiting`` is done."""
        self._stop_reading()
        self.waiting = waiting
        waiting.add_done_callback(self._read_again)

    def _read_again(self, done: asyncio.Future[None]) -> None:
        if done is not self.waiting:
            return  # an earlier future: a later one still holds reading
        self.waiting = None
        self._read_if_free()

    def _stop_reading(self) -> None:
        if self._reading and self.transport is not None:
            self.transport.pause_reading()
            self._reading = False

    def _read_if_free(self) -> None:
        """Read again, unless the node still waits or packets are still held."""
        transport = self.transport
        if (not self._reading and not self.holding_back and transport is not None
                and not transport.is_closing()):
            transport.resume_reading()
            self._reading = True


class Route(Protocol):
    """What :class:`Sender` needs of a destination's route (``_tcp_route._Route``)."""

    framing: str
    writer: PacketIO | None
    """Its connection's, while nothing waits in its queue; else None."""

    def hold(self, packet: bytes) -> asyncio.Future[None] | None:
        """Queue ``packet`` until the connection takes it (or report it dropped); a future
        while the queue is full."""


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

    def send(self, destination: HostPort, packet: bytes) -> asyncio.Future[None] | None:
        """Write one packet on the destination's connection, or queue it until it can be;
        a future while the destination's queue is full (see ``Transport.send``)."""
        if len(packet) > self.max_packet_size:
            raise MessageTooLarge(len(packet), self.max_packet_size)
        route = self.routes.get(destination)
        if route is None:
            raise self._cannot_send(destination)
        if not packet:
            raise TransportError("tcp cannot carry an empty packet: a packet has 1 byte or more")
        if route.framing == HEPH_JSON and not is_heph_json(packet):
            raise TransportError(
                f"cannot send to tcp {display(*destination)}: it speaks heph-json, so a packet"
                f" must be one JSON object, starting with b'{{'; this one starts {packet[:8]!r}"
            )
        writer = route.writer
        if writer is not None and not writer.paused:
            writer.write(packet)  # which frames it
            return None
        return route.hold(packet)
