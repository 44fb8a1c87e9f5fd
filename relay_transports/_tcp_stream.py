"""One ``tcp`` connection: splits what it reads into packets, writes whole frames.

Its framing (a :class:`~relay_core.StreamFraming`, its route's or the
listener's) is fixed when it opens; its splitter cuts each packet out of what
is read. Bytes it cannot cut close the connection, after the packets whole
before them are delivered.

A stream reports to its transport (opened, closed, malformed input) and to its
route (writable again, lost); it never decides where packets go. Its write
buffer is capped at the settings' ``high_water``: above it the stream is
``paused`` (its ``io.paused``) and its route queues instead of writing.

Reading is the node's to slow: when ``packet_received`` returns a future (an
actor's mailbox is full), the stream stops reading until the future completes,
still handing over the packets of the chunk it already read (the node queues
them in order), so TCP's own flow control slows the sender and nothing is lost.

The work per chunk and per packet (splitting, handing over, pausing, writing)
is its :class:`PacketIO`'s; the stream keeps opening, closing, the flow
control of writes and the idle timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, Protocol, cast

from relay_core import (
    ConnectionDropReason,
    HostPort,
    MalformedFrame,
    StreamFraming,
    TransportEvents,
)

from ._addresses import display
from ._budget import InputBudget
from ._tcp_net import _tune, logger
from ._tcp_options import _Settings

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
        framing: StreamFraming,
        max_packet_size: int,
        deliver: Deliver,
        source: HostPort,
        malformed: Callable[[MalformedFrame], object],
        budget: InputBudget,
        over_budget: Callable[[], object],
    ) -> None:
        self.splitter = framing.splitter(max_packet_size)
        self._frame = framing.frame
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
        """Write ``packet`` as the framing frames it.

        Always one ``write`` of the packet joined to its prefix, never
        ``writelines``: CPython 3.12 and 3.13.0's selector transports do not
        pause their protocol for what ``writelines`` buffers (gh-127655), so
        the write buffer would grow past its high-water mark unseen. The copy
        costs about what a second buffer would.
        """
        transport = self.transport
        assert transport is not None  # routes write only to connected streams
        self.active = True
        transport.write(self._frame(packet))

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


class StreamHost(Protocol):
    """What a stream needs of the transport that holds it, and tells it."""

    settings: _Settings
    events: TransportEvents
    input_budget: InputBudget
    closed: bool

    def stream_opened(self, stream: _Stream) -> None: ...

    def stream_closed(self, stream: _Stream) -> None: ...

    def stream_malformed(self, stream: _Stream, error: MalformedFrame) -> None: ...

    def stream_dropped(self, stream: _Stream, reason: ConnectionDropReason) -> None: ...


class StreamRoute(Protocol):
    """The outbound queue a stream writes for, told when it can write again and when it
    is lost."""

    stream: _Stream | None

    def flush(self) -> None: ...

    def lost(self, stream: _Stream, error: BaseException | None) -> None: ...


class _Stream(asyncio.Protocol):
    """One TCP connection: splits what it reads into packets and writes whole frames."""

    def __init__(
        self, owner: StreamHost, route: StreamRoute | None, source: HostPort,
        framing: StreamFraming,
    ) -> None:
        self.owner = owner
        self.route = route  # None for an accepted connection until connection_made
        self.handle: asyncio.Transport | None = None  # what connection_made got
        self.dead = False
        self.idle = False  # closed by the idle timer rather than by a failure
        self.accepted = route is None
        """Whether a listener accepted it: it counts against ``max_connections``."""
        self.io = PacketIO(framing, owner.settings.max_object_size, owner.events.packet_received,
                           source, self._malformed, owner.input_budget, self._over_budget)
        self.data_received = self.io.data_received  # type: ignore[method-assign]
        self._timer: asyncio.TimerHandle | None = None
        self._first_packet: asyncio.TimerHandle | None = None

    @property
    def source(self) -> HostPort:
        """Handed to packet_received, and the route's key."""
        return self.io.source

    @source.setter
    def source(self, source: HostPort) -> None:
        self.io.source = source

    @property
    def received(self) -> bool:
        """Whether a byte ever arrived."""
        return self.io.received

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.handle = self.io.transport = cast(asyncio.Transport, transport)
        _tune(transport.get_extra_info("socket"), self.owner.settings.keepalive)
        self.owner.stream_opened(self)

    def ready(self, transport: asyncio.Transport) -> None:
        """Start writing on ``transport`` (the TLS one, once its handshake is done)."""
        settings = self.owner.settings
        transport.set_write_buffer_limits(high=settings.high_water)
        self._watch_idle()
        if self.accepted and not self.io.delivered:
            self._first_packet = asyncio.get_running_loop().call_later(
                settings.handshake_timeout, self._check_first_packet)

    def _malformed(self, error: MalformedFrame) -> None:
        """What was read does not parse: report it and drop the connection."""
        self.owner.stream_malformed(self, error)
        self.abort()

    def _over_budget(self) -> None:
        """Its unfinished packet would take the transport past ``max_buffered_input``."""
        self.owner.stream_dropped(self, "connections_over_budget")
        self.abort()

    def _check_first_packet(self) -> None:
        """An accepted connection that sent no whole packet within ``handshake_timeout`` (a
        client trickling bytes, or one that connects and waits) gives its place up."""
        self._first_packet = None
        if not self.io.delivered and not self.dead:
            self.owner.stream_dropped(self, "connections_timed_out")
            self.abort()

    def pause_writing(self) -> None:
        self.io.paused = True

    def resume_writing(self) -> None:
        self.io.paused = False
        route = self.route
        if route is not None and route.stream is self:
            route.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.dead = True
        if self._timer is not None:
            self._timer.cancel()
        if self._first_packet is not None:
            self._first_packet.cancel()
        self._check_ended()
        self.io.release()
        self.owner.stream_closed(self)
        route = self.route
        if route is not None and route.stream is self:
            route.lost(self, exc)

    def close(self) -> None:
        self.io.drop_held()  # closed here: what it had not handed over goes with it
        if self.handle is not None:
            self.handle.close()

    def abort(self) -> None:
        self.io.drop_held()
        if self.handle is not None:
            self.handle.abort()

    def _check_ended(self) -> None:
        """A stream whose framing says it ended where it must not (heph-json, inside an
        object) lost that packet: say so, as for garbage."""
        if not self.io.failed and not self.owner.closed:
            try:
                self.io.splitter.end()
            except MalformedFrame as exc:
                self.owner.stream_malformed(self, exc)

    def _watch_idle(self) -> None:
        idle_timeout = self.owner.settings.idle_timeout
        if idle_timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        """Close after a whole ``idle_timeout`` period with no byte read or written.

        A stream whose reading is held back is not idle: its peer is being held back.
        """
        if self.io.active or self.io.holding_back:
            self.io.active = False
            self._watch_idle()
            return
        self.idle = True
        logger.debug("tcp connection with %s idle; closing it", display(*self.source))
        if self.accepted:
            self.owner.stream_dropped(self, "connections_timed_out")
        self.close()
