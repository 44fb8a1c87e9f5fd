"""One ``tcp`` connection: splits what it reads into packets, writes whole frames.

Its framing is fixed when it opens: length-prefixed packets, or heph-json
objects, each delivered as one packet with its bytes unchanged. Either way,
bytes that do not parse close the connection, after the packets whole before them
are delivered.

A stream reports to its transport (opened, closed, malformed input) and to its
route (writable again, lost); it never decides where packets go. Its write
buffer is capped at the settings' ``high_water``: above it the stream is
``paused`` (its ``io.paused``) and its route queues instead of writing.

Reading is the node's to slow: when ``packet_received`` returns a future (an
actor's mailbox is full), the stream stops reading until the future completes,
still handing over the packets of the chunk it already read (the node queues
them in order), so TCP's own flow control slows the sender and nothing is lost.

The work per chunk and per packet (splitting, handing over, pausing, writing)
is the compiled :class:`~relay_transports._tcp_packets.PacketIO`'s; the loop
calls its ``data_received`` directly.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

from relay_core import ConnectionDropReason, HostPort, MalformedFrame, TransportEvents
from relay_core.protocol.framing import StreamDeframer
from relay_core.protocol.heph_stream import HephObjectSplitter

from ._addresses import display
from ._budget import InputBudget
from ._tcp_net import _tune, logger
from ._tcp_options import HEPH_JSON, _Settings
from ._tcp_packets import PacketIO


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
        self, owner: StreamHost, route: StreamRoute | None, source: HostPort, framing: str
    ) -> None:
        self.owner = owner
        self.route = route  # None for an accepted connection until connection_made
        self.handle: asyncio.Transport | None = None  # what connection_made got
        self.dead = False
        self.idle = False  # closed by the idle timer rather than by a failure
        self.accepted = route is None
        """Whether a listener accepted it: it counts against ``max_connections``."""
        settings = owner.settings
        splitter = (HephObjectSplitter(settings.max_object_size) if framing == HEPH_JSON
                    else StreamDeframer(settings.max_packet_size))
        self.io = PacketIO(splitter, owner.events.packet_received, source, self._malformed,
                           owner.input_budget, self._over_budget)
        # The loop calls data_received for every chunk read: the compiled one, not a
        # frame of this module in front of it.
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
        """A heph-json stream cut inside an object lost that object: say so, as for garbage."""
        splitter = self.io.splitter
        if (isinstance(splitter, HephObjectSplitter) and not self.io.failed
                and not self.owner.closed):
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
