"""Where ``tcp`` packets for one destination go: its connection, or a bounded queue.

An inbound route lives and dies with its accepted connection. An outbound
route connects, and after a loss reconnects only while packets wait for it,
with capped exponential backoff (half the cap, plus up to another half at
random). A queued packet leaves at most once, in order; what a lost connection
took is reported, never written again.

An attempt that finds the peer unreachable (refused, no route, or a TLS
handshake that fails, such as a certificate that does not verify) drops the
queue and reports :class:`~relay_core.PeerUnreachable`, holding for the
back-off before the next attempt, which the next send starts. So a caller hears
at once, nothing it was told failed is delivered later, and a peer that comes
back is tried again within the back-off (at most ``backoff_max``).

A queue holds packets, and counts the bytes they take framed. The transport's
send (:class:`Sender`) writes a packet straight to the route's ``writer`` while it
has one and the connection takes writes, and hands it to :meth:`_Route.hold` otherwise.

A queue at or past ``queue_limit`` bytes is *full*: :meth:`_Route.hold` hands
back a future that completes once it is below the limit again (or the route is
gone), and the node holds back the senders that can wait until then. Packets of
sends that cannot wait (replies) are still queued up to a hard limit of
``queue_limit + max_packet_size``; beyond it a packet is dropped and reported
unsent (``link_full``). Packets dropped unsent are always reported as packets,
so that the node can count their messages.
"""

from __future__ import annotations

import asyncio
import errno
import random
import ssl
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol, cast

from relay_core import (
    HostPort,
    MessageTooLarge,
    PeerUnreachable,
    StreamFraming,
    TransportError,
    UnsentReason,
)

from ._addresses import display
from ._held_senders import HeldSenders
from ._tcp_net import _error, _reason
from ._tcp_stream import PacketIO, StreamHost, _Stream

_UNREACHABLE = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})
"""connect() errors that say the peer cannot be reached, as opposed to slow or busy."""


class RouteHost(StreamHost, Protocol):
    """What a route needs of the transport that holds it, and tells it."""

    def progressed(self) -> None: ...

    def forget(self, route: _Route) -> None: ...

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None: ...


class _Route:
    """Where packets for one destination go: its connection, or a bounded queue."""

    def __init__(self, owner: RouteHost, destination: HostPort, framing: StreamFraming) -> None:
        self.owner = owner
        self.destination = destination
        self.framing = framing
        """How packets travel on every connection of this route."""
        self.refusal = framing.refusal
        """Says why the framing cannot carry a packet, asked of each one sent; None when it
        carries them all."""
        self.stream: _Stream | None = None
        self.writer: PacketIO | None = None
        """The stream's packet I/O while nothing waits in the queue, else None."""
        self.queue: deque[bytes] = deque()
        self.queued = 0  # bytes the queued packets take on the stream
        self.held = HeldSenders()
        """What senders wait on while the queue is full."""
        self._overhead = framing.overhead

    def hold(self, packet: bytes) -> asyncio.Future[None] | None:
        """Queue a packet that cannot be written now; a future while the queue is full."""
        settings = self.owner.settings
        size = len(packet) + self._overhead
        if self.queue and self.queued + size > settings.queue_limit + settings.max_packet_size:
            self.owner.events.packets_unsent(self.destination, [packet], "link_full")
        else:
            self.queue.append(packet)
            self.queued += size
            self.writer = None  # later packets wait behind this one
        if self.queued < settings.queue_limit:
            return None
        return self.held.hold()

    def pending(self) -> int:
        """Bytes held for this destination: queued, and in the connection's write buffer."""
        handle = self.stream.handle if self.stream is not None else None
        return self.queued + (handle.get_write_buffer_size() if handle is not None else 0)

    def release(self) -> None:
        """Wake the senders held back, if the queue is no longer full (or is gone)."""
        if self.queued < self.owner.settings.queue_limit:
            self.held.release()

    def attach(self, stream: _Stream) -> None:
        self.stream = stream
        stream.route = self
        self.flush()

    def flush(self) -> None:
        """Write queued packets, in order, while the connection takes them."""
        stream, queue = self.stream, self.queue
        if stream is None:
            return
        while queue and not stream.io.paused:
            packet = queue.popleft()
            self.queued -= len(packet) + self._overhead
            stream.io.write(packet)
        if not queue and self.stream is stream:
            self.writer = stream.io
        self.release()
        self.owner.progressed()

    def drop_queue(self, reason: UnsentReason) -> int:
        """Forget every queued packet, reporting them unsent; return how many there were."""
        dropped = list(self.queue)
        self.queue.clear()
        self.queued = 0
        self.writer = self.stream.io if self.stream is not None else None
        if dropped:
            self.owner.events.packets_unsent(self.destination, dropped, reason)
        self.release()
        return len(dropped)

    def lost(self, stream: _Stream, error: BaseException | None) -> None:
        """An accepted connection is gone: its route goes with it."""
        self.stream = self.writer = None
        self.owner.forget(self)
        dropped = self.drop_queue("closed_unsent" if self.owner.closed else "connection_lost")
        self.owner.progressed()
        if self.owner.closed:
            return
        if error is not None or dropped:
            where = display(*self.destination)
            reason = _reason(error) if error is not None else "closed"
            text = f"tcp connection from {where} lost ({reason}); {dropped} queued packets dropped"
            self.owner.events.send_failed(self.destination, TransportError(text))


class _Outbound(_Route):
    """A route that connects to its destination and reconnects after a loss."""

    def __init__(
        self,
        owner: RouteHost,
        destination: HostPort,
        framing: StreamFraming,
        tls: ssl.SSLContext | None,
        server_name: str | None,
    ) -> None:
        super().__init__(owner, destination, framing)
        self.tls = tls
        self.server_name = server_name
        self._connecting = False
        self._attempts = 0  # failures since the last connection that stayed up
        self._connected_at = 0.0
        self._not_before = 0.0  # event-loop time before which no attempt starts

    def hold(self, packet: bytes) -> asyncio.Future[None] | None:
        if self.stream is None and not self._connecting:
            self.start()
        return super().hold(packet)

    def start(self) -> None:
        if self.stream is None and not self._connecting and not self.owner.closed:
            self._connecting = True
            self.owner.spawn(self._connect_until_up())

    def lost(self, stream: _Stream, error: BaseException | None) -> None:
        self.stream = self.writer = None
        if stream.idle or self.owner.closed:
            self._attempts = 0
            return
        now = asyncio.get_running_loop().time()
        uptime = now - self._connected_at
        self._attempts = 1 if uptime >= self.owner.settings.backoff_max else self._attempts + 1
        self._not_before = now + self._backoff()
        reason = _reason(error) if error is not None else "closed by the peer"
        if self.tls and not stream.received:
            reason += "; a TLS server that wants a client certificate closes like this"
        text = (
            f"tcp connection to {display(*self.destination)} lost ({reason}); packets "
            "written to it may not have arrived; reconnecting"
        )
        self.owner.events.send_failed(self.destination, TransportError(text))
        if self.queue:
            self.start()

    async def _connect_until_up(self) -> None:
        """Connect, retrying with backoff while packets wait; with none, the next send retries."""
        loop = asyncio.get_running_loop()
        try:
            while not self.owner.closed:
                delay = self._not_before - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                try:
                    stream = await self._connect()
                except TransportError as exc:
                    self._attempts += 1
                    backoff = self._backoff()
                    self._not_before = loop.time() + backoff
                    if isinstance(exc, PeerUnreachable):
                        self._unreachable(exc, backoff)
                        return
                    self.owner.events.send_failed(self.destination, exc)
                    if not self.queue:
                        return
                    continue
                if not stream.dead:
                    self._connected_at = asyncio.get_running_loop().time()
                    stream.ready(cast(asyncio.Transport, stream.handle))
                    self.attach(stream)
                    return
                self._attempts += 1  # lost before it could be used: count it as a failure
                self._not_before = loop.time() + self._backoff()
        finally:
            self._connecting = False

    def _unreachable(self, error: PeerUnreachable, backoff: float) -> None:
        """Drop what waited for this attempt and report the peer unreachable for ``backoff``."""
        self.drop_queue("peer_unreachable")
        error.retry_after = backoff
        self.owner.events.send_failed(self.destination, error)

    def _backoff(self) -> float:
        """Half a cap that doubles with each failure, plus up to another half at random.

        Never near zero: the node holds further sends to an unreachable peer for this
        long, and a hold of a few microseconds would hold nothing.
        """
        settings = self.owner.settings
        cap = min(settings.backoff_max, settings.backoff_initial * 2.0 ** min(self._attempts - 1, 40))
        return random.uniform(cap / 2, cap)

    async def _connect(self) -> _Stream:
        settings = self.owner.settings
        host, port = self.destination
        where = display(host, port)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(settings.connect_timeout):
                _, stream = await loop.create_connection(
                    lambda: _Stream(self.owner, self, self.destination, self.framing),
                    host,
                    port,
                    ssl=self.tls,
                    server_hostname=self.server_name if self.tls else None,
                    ssl_handshake_timeout=settings.connect_timeout if self.tls else None,
                )
        except TimeoutError:
            raise TransportError(
                errno.ETIMEDOUT,
                f"cannot connect to tcp {where}: no connection "
                f"within connect_timeout ({settings.connect_timeout:g} s)",
            ) from None
        except ssl.SSLError as exc:
            raise PeerUnreachable(f"tcp://{where}",
                                  f"tls handshake failed: {_reason(exc)}") from None
        except ConnectionResetError as exc:
            hint = " (is it listening with TLS?)" if self.tls else ""
            raise PeerUnreachable(f"tcp://{where}", f"{_reason(exc)}{hint}",
                                  errno=exc.errno) from None
        except OSError as exc:
            if exc.errno in _UNREACHABLE:
                raise PeerUnreachable(f"tcp://{where}", _reason(exc), errno=exc.errno) from None
            raise _error(exc.errno, f"cannot connect to tcp {where}: {_reason(exc)}") from None
        return stream


class Sender:
    """``send`` for the transport: checks a packet and hands it to its destination's route."""

    def __init__(
        self,
        routes: Mapping[HostPort, _Route],
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
        refusal = route.refusal
        if refusal is not None and (reason := refusal(packet)) is not None:
            raise TransportError(f"cannot send to tcp {display(*destination)}: {reason}")
        writer = route.writer
        if writer is not None and not writer.paused:
            writer.write(packet)  # which frames it
            return None
        return route.hold(packet)

