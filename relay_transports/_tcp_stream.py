"""One ``tcp`` connection: splits what it reads into packets, writes whole frames.

Its framing is fixed when it opens: length-prefixed packets, or heph-json
objects, each delivered as one packet with its bytes unchanged. Either way,
bytes that do not parse close the connection, after the packets whole before them
are delivered.

A stream reports to its transport (opened, closed, malformed input) and to its
route (writable again, lost); it never decides where packets go. Its write
buffer is capped at the settings' ``high_water``: above it the stream is
``paused`` and its route queues instead of writing.

Reading is the node's to slow: when ``packet_received`` returns a future (an
actor's mailbox is full), the stream stops reading until the future completes,
still handing over the packets of the chunk it already read (the node queues
them in order), so TCP's own flow control slows the sender and nothing is lost.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from relay_core import HostPort, MalformedFrame
from relay_core._framing import StreamDeframer
from relay_core._heph import HephObjectSplitter

from ._tcp_net import _display, _tune, logger
from ._tcp_options import HEPH_JSON

if TYPE_CHECKING:
    from ._tcp import TcpTransport
    from ._tcp_route import _Route


class _Stream(asyncio.Protocol):
    """One TCP connection: splits what it reads into packets and writes whole frames."""

    def __init__(
        self, owner: TcpTransport, route: _Route | None, source: HostPort, framing: str
    ) -> None:
        self.owner = owner
        self.route = route  # None for an accepted connection until connection_made
        self.source = source  # handed to packet_received, and the route's key
        self.handle: asyncio.Transport | None = None  # what connection_made got
        self.transport: asyncio.Transport | None = None  # set once writable (TLS is up)
        self.paused = False
        self.dead = False
        self.idle = False  # closed by the idle timer rather than by a failure
        self.active = True
        self.received = False  # whether a byte ever arrived
        self._failed = False
        size = owner.settings.max_packet_size
        self._splitter: StreamDeframer | HephObjectSplitter = (
            HephObjectSplitter(size) if framing == HEPH_JSON else StreamDeframer(size)
        )
        self._deliver = owner.events.packet_received
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Future[None] | None = None
        """What reading waits for (the node's latest future), or None while reading."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.handle = cast(asyncio.Transport, transport)
        _tune(transport.get_extra_info("socket"), self.owner.settings.keepalive)
        self.owner.stream_opened(self)

    def ready(self, transport: asyncio.Transport) -> None:
        """Start writing on ``transport`` (the TLS one, once its handshake is done)."""
        transport.set_write_buffer_limits(high=self.owner.settings.high_water)
        self.transport = transport
        self._watch_idle()

    def write(self, frame: bytes) -> None:
        assert self.transport is not None  # routes write only to ready streams
        self.active = True
        self.transport.write(frame)

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return
        self.active = self.received = True
        for packet in self._split(data):
            waiting = self._deliver(packet, self.source)
            if waiting is not None and waiting is not self._waiting:
                self._wait_for(waiting)
        splitter = self._splitter
        if isinstance(splitter, HephObjectSplitter) and splitter.failed and not self._failed:
            self._split(b"")  # raises the fault found after those packets

    def _split(self, data: bytes) -> list[bytes]:
        """The packets ``data`` completes; none, and the connection aborted, at a fault."""
        try:
            return self._splitter.feed(data)
        except MalformedFrame as exc:
            self._failed = True
            self.owner.stream_malformed(self, exc)
            self.abort()
            return []

    def _wait_for(self, waiting: asyncio.Future[None]) -> None:
        """Stop reading until ``waiting`` (the node completes its futures in order) is done."""
        reader = self.transport or self.handle
        if self._waiting is None and reader is not None:
            reader.pause_reading()
        self._waiting = waiting
        waiting.add_done_callback(self._read_again)

    def _read_again(self, done: asyncio.Future[None]) -> None:
        if done is not self._waiting:
            return  # an earlier future: a later one still holds reading
        self._waiting = None
        reader = self.transport or self.handle
        if reader is not None and not self.dead and not reader.is_closing():
            reader.resume_reading()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        route = self.route
        if route is not None and route.stream is self:
            route.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.dead = True
        if self._timer is not None:
            self._timer.cancel()
        self._check_ended()
        self.owner.stream_closed(self)
        route = self.route
        if route is not None and route.stream is self:
            route.lost(self, exc)

    def close(self) -> None:
        transport = self.transport or self.handle
        if transport is not None:
            transport.close()

    def abort(self) -> None:
        transport = self.transport or self.handle
        if transport is not None:
            transport.abort()

    def _check_ended(self) -> None:
        """A heph-json stream cut inside an object lost that object: say so, as for garbage."""
        splitter = self._splitter
        if isinstance(splitter, HephObjectSplitter) and not self._failed and not self.owner.closed:
            try:
                splitter.end()
            except MalformedFrame as exc:
                self.owner.stream_malformed(self, exc)

    def _watch_idle(self) -> None:
        idle_timeout = self.owner.settings.idle_timeout
        if idle_timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        """Close after a whole ``idle_timeout`` period with no byte read or written.

        A stream whose reading waits for the node is not idle: its peer is being held back.
        """
        if self.active or self._waiting is not None:
            self.active = False
            self._watch_idle()
            return
        self.idle = True
        logger.debug("tcp connection with %s idle; closing it", _display(*self.source))
        self.close()
