"""The ``tcp`` transport: packets on TCP connections, optionally over TLS.

How packets travel on a connection is its :class:`~relay_core.StreamFraming`,
which the node hands over as the ``framing`` option: the transport's applies
to the connections it accepts; an outbound destination takes its own from its
prepare options. Without one, a packet travels after its u32 length
(:class:`~relay_core.LengthPrefixFraming`); the node hands Heph's JSON objects
(:class:`~relay_core.HephJsonFraming`, docs/heph.md) where the config speaks it.

Rules this module keeps:

- One route per destination, in one table. An *outbound* route (made by
  :meth:`TcpTransport.prepare`, which starts connecting) owns at most one
  connection at a time. After a loss or a failed attempt it connects again only
  when packets wait for it (at once if some are queued, else at the next send),
  retrying with capped exponential backoff while they wait; so a connection
  that the peer closed for idleness is not reopened to sit idle. An attempt
  that finds the peer unreachable (refused, no route, TLS handshake failed)
  drops the queue and reports ``PeerUnreachable`` (see ``_tcp_route``).
- An *inbound* route lives as long as its accepted connection and is keyed by
  that connection's remote ``(host, port)``, the source handed to
  ``events.packet_received``: a reply goes back on the connection its request
  came in on, even to a client with no listener.
- At most once: a packet is written to at most one connection, once. It waits
  in its route's queue only while it cannot be written (not connected yet, TLS
  handshake running, write buffer above its high-water mark) and leaves from
  there in order. What was written to a connection that then fails is lost and
  reported, never written again.
- Bounded memory, counted by this module rather than left to the socket
  transport's flow control: a connection takes writes up to ``4 * batch_size``
  buffered bytes (one ``write`` per packet, which every event loop flow-controls);
  beyond, packets queue. A queue at ``queue_limit`` bytes is full: ``send``
  hands back a future, so the node holds back senders that can wait, and takes
  packets of sends that cannot wait up to ``queue_limit + max_packet_size``,
  dropping (and reporting unsent) beyond. A reader holds at most one partial
  packet of at most ``max_object_size`` bytes (``max_packet_size``), and all
  readers together at most ``max_buffered_input`` (``InputBudget``).
- Bounded clients: at most ``max_connections`` accepted connections, each with
  ``handshake_timeout`` for its TLS handshake and then its first packet
  (``_tcp_inbound``).
- Closing delivers: :meth:`TcpTransport.flush` waits for queued packets to be
  written, a connection still being made included; :meth:`TcpTransport.close`
  reports what is still queued as unsent, then closes each connection after
  its write buffer drains (for at most a second; then it aborts:
  ``_tcp_connections``).
- Nothing raises out of an event-loop callback. Failures after ``send``
  returned go to ``events.send_failed``, packets dropped unsent to
  ``events.packets_unsent``; bad input from a client (what the connection's
  framing cannot cut, or a packet over the limit) is reported to
  ``events.input_malformed`` and closes only that connection; that is logged at
  WARNING, rate-limited.

Reading uses protocol callbacks rather than stream coroutines, and a packet is
one write of its framed bytes (the node already coalesces frames
up to ``batch_size``): a connection's :class:`~relay_transports._tcp_stream.PacketIO`
does both, and :class:`~relay_transports._tcp_route.Sender` checks each packet
sent and hands it to its route.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Coroutine, Mapping
from typing import Any

from relay_core import (
    ConfigError,
    ConnectionDropReason,
    HostPort,
    MalformedFrame,
    RateLimitedLog,
    StreamFraming,
    Transport,
    TransportError,
    TransportEvents,
)
from relay_core.interfaces import check_declared

from ._addresses import check_port, display, resolve
from ._budget import InputBudget
from ._tcp_connections import Connections
from ._tcp_inbound import Inbound
from ._tcp_net import logger
from ._tcp_options import (
    _KIB,
    _MIB,
    LISTEN_OPTIONS,
    PEER_OPTIONS,
    _check_peer_options,
    _ClientTls,
    _Limits,
    _server_tls,
    _settings,
    peer_framing,
)
from ._tcp_route import Sender, _Outbound, _Route
from ._tcp_stream import _Stream
from ._tls import TLS_FILE_OPTIONS

__all__ = ["TcpTransport"]

class TcpTransport(Transport):
    """Packets over TCP (optionally TLS): ordered, and lost only with their connection.

    Options (the keys of ``[listen.tcp]``; sizes in bytes, times in seconds):

    - ``max_packet_size`` (64 MiB + 64 KiB): the largest packet sent or
      accepted. It must cover the node's ``max_message_size`` plus framing
      overhead, or the largest messages cannot travel.
    - ``batch_size`` (256 KiB, or ``max_packet_size`` if smaller): the node
      coalesces frames into packets up to this size; four of them is a
      connection's write-buffer high-water mark.
    - ``queue_limit`` (16 MiB): bytes that may wait per destination while it
      connects or its buffer drains; at the limit, ``send`` hands back a future
      (the node's awaited sends wait for it), and packets that cannot wait are
      taken up to ``queue_limit + max_packet_size``, then dropped and reported.
    - ``connect_timeout`` (5), ``backoff_initial`` (0.05), ``backoff_max`` (5):
      one connection attempt, TLS handshake included, and the bounds of the
      wait between attempts (a cap that doubles per failure; half of it plus up
      to another half at random). After an attempt that finds the peer
      unreachable, the node's sends to it raise ``PeerUnreachable`` for that wait.
    - ``keepalive`` (15; 0 turns it off): idle time before TCP keepalive
      probes; a peer that answers none of three is declared dead after about
      twice this.
    - ``idle_timeout`` (300; 0 never): close a connection after one to two such
      periods without a byte read or written; an outbound one reopens at the
      next send. An accepted one closed so is counted ``connections_timed_out``.
    - ``max_connections`` (1024): accepted connections open at once, TLS
      handshakes included. At the cap a newcomer takes the place of the oldest
      connection that has sent no whole packet yet; with none, the newcomer is
      closed at once. Either is counted ``connections_refused`` (and so, under
      the listener's own address, is
      each accept that fails for lack of file descriptors: accepting then
      rests a second and resumes, while open connections are served).
    - ``handshake_timeout`` (10): an accepted connection has this long for its
      TLS handshake, then again for its first whole packet; else it is closed,
      counted ``connections_timed_out``.
    - ``max_buffered_input`` (``max_packet_size``, at least that): bytes of
      unfinished packets all connections may hold together. The connection
      whose unfinished packet would take the total past it is closed, counted
      ``connections_over_budget``, and its bytes let go.
    - ``certificate``, ``private_key`` (PEM paths, both or neither): listen
      with TLS. ``client_ca``: also require client certificates it signed.
    - ``ca``, ``client_certificate``, ``client_key``: defaults for peers with
      ``tls = true`` (see :meth:`check_peer_options`); without ``ca``, servers
      are verified against the system trust store.
    - ``max_object_size`` (``max_packet_size``, at most that): the largest
      packet a connection reads. A larger one closes its connection as soon as
      its framing tells (at once after a length prefix); a framing may bound
      its packets lower still (the node's Heph framing: ``max_message_size``).
    - ``framing`` (a :class:`~relay_core.LengthPrefixFraming`): how packets
      travel on accepted connections, a :class:`~relay_core.StreamFraming`
      the node hands over (never a config key). Each packet its splitter cuts
      out goes to ``packet_received``; what it cannot cut closes that
      connection. What is sent back on an accepted connection passes the
      framing's ``refusal`` (the node's Heph listener framing takes any JSON
      value there: Heph reads bare messages). Outbound destinations take their
      own (see :meth:`prepare`).
    """

    scheme = "tcp"
    reliable = True
    options = LISTEN_OPTIONS
    peer_options = PEER_OPTIONS
    path_options = TLS_FILE_OPTIONS

    def __init__(
        self,
        events: TransportEvents,
        *,
        max_packet_size: int = 64 * _MIB + 64 * _KIB,
        batch_size: int | None = None,
        queue_limit: int = 16 * _MIB,
        connect_timeout: float = 5.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 5.0,
        keepalive: float = 15.0,
        idle_timeout: float | None = 300.0,
        max_connections: int = 1024,
        handshake_timeout: float = 10.0,
        max_buffered_input: int | None = None,
        max_object_size: int | None = None,
        certificate: str | None = None,
        private_key: str | None = None,
        client_ca: str | None = None,
        ca: str | None = None,
        client_certificate: str | None = None,
        client_key: str | None = None,
        framing: StreamFraming | None = None,
    ) -> None:
        super().__init__(events)
        self.settings = _settings(
            max_packet_size,
            batch_size,
            queue_limit,
            connect_timeout,
            backoff_initial,
            backoff_max,
            keepalive,
            idle_timeout,
            framing,
            _Limits(max_connections, handshake_timeout, max_buffered_input, max_object_size),
        )
        self.max_packet_size = self.settings.max_packet_size
        self.batch_size = self.settings.batch_size
        server_tls = _server_tls(certificate, private_key, client_ca)
        self._client_tls = _ClientTls(ca, client_certificate, client_key)
        self._routes: dict[HostPort, _Route] = {}
        self.input_budget = InputBudget(self.settings.max_buffered_input)
        self._log = RateLimitedLog(logger)
        self._inbound = Inbound(self, server_tls, self._log)
        self._sender = Sender(self._routes, self.max_packet_size, self._cannot_send)
        self.send = self._sender.send  # type: ignore[method-assign]
        self._connections = Connections(events)
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress = asyncio.Event()
        """Set whenever a queue drains or a route goes: what flush() waits on."""
        self.closed = False

    @classmethod
    def check_peer_options(cls, options: Mapping[str, object], where: str) -> None:
        """Accept ``tls`` (bool), ``ca``, ``client_certificate``, ``client_key`` (PEM
        paths), ``server_name`` (the name to verify; default the address host) and
        ``framing`` (a :class:`~relay_core.StreamFraming`; the node sets it)."""
        _check_peer_options(options, where)
        check_declared(cls.peer_options, options, where, "tcp peers")

    async def listen(self, host: str, port: int) -> HostPort:
        """Accept connections on host:port (port 0 picks a free port); return what was bound."""
        where = display(host, port)
        self._check_open(f"cannot listen on tcp {where}")
        check_port("tcp", host, port, 0)
        numeric = (await resolve("tcp", host, port, socket.SOCK_STREAM))[0][1][0]
        return self._inbound.listen(numeric, port, where)

    async def prepare(
        self, host: str, port: int, options: Mapping[str, object] | None = None
    ) -> HostPort:
        """Resolve host:port and start connecting to it in the background.

        Returns the numeric destination at once; packets sent before the
        connection is up wait in its queue. ``options`` are the peer's (see
        :meth:`check_peer_options`); their ``framing`` (default the length
        prefix) writes each packet sent, and refuses one it cannot carry. A
        destination prepared before keeps the TLS settings it was first
        prepared with, and cannot change its framing.
        """
        where = display(host, port)
        self._check_open(f"cannot connect to tcp {where}")
        check_port("tcp", host, port, 1)
        options = options or {}
        self.check_peer_options(options, f"tcp peer {where}")
        framing = peer_framing(options)
        destination = (await resolve("tcp", host, port, socket.SOCK_STREAM))[0][1]
        self._check_open(f"cannot connect to tcp {where}")
        existing = self._routes.get(destination)
        if isinstance(existing, _Outbound):
            _check_same_framing(existing, framing, where)
            return destination
        tls, server_name = self._client_tls.for_peer(host, where, options)
        route = _Outbound(self, destination, framing, tls, server_name)
        self._routes[destination] = route
        route.start()
        return destination

    def send(self, destination: HostPort, packet: bytes) -> asyncio.Future[None] | None:
        """Write one packet on the destination's connection, or queue it until it can be;
        a future while the destination's queue is full."""
        return self._sender.send(destination, packet)

    @property
    def buffered_input(self) -> int:
        """Bytes of unfinished packets all connections hold now (at most ``max_buffered_input``,
        plus the chunk being read)."""
        return self.input_budget.held

    @property
    def accepted_connections(self) -> int:
        """Accepted connections open now, TLS handshakes included (at most ``max_connections``)."""
        return self._inbound.count

    def pending(self, destination: HostPort) -> int:
        """Bytes held for ``destination``: queued, and in its connection's write buffer."""
        route = self._routes.get(destination)
        return route.pending() if route is not None else 0

    async def flush(self) -> None:
        """Return once every queue is empty and every write buffer drained, connections
        still being made waited for (the node bounds this wait with its close grace)."""
        while any(route.queue for route in self._routes.values()):
            self._progress.clear()
            await self._progress.wait()
        await self._connections.drain()

    def waiting(self, destination: HostPort) -> int:
        """Packets queued for ``destination``: not connected yet, or its buffer is full."""
        route = self._routes.get(destination)
        return len(route.queue) if route is not None else 0

    async def close(self) -> None:
        """Stop listening, report packets still queued as unsent, close every connection."""
        if self.closed:
            return
        self.closed = True
        self._inbound.stop_listening()
        for task in self._tasks:
            task.cancel()
        for route in self._routes.values():
            route.drop_queue("closed_unsent")
        self._routes.clear()
        await self._connections.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._inbound.wait_closed()

    # -- for routes and streams ------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stream_opened(self, stream: _Stream) -> None:
        self._connections.add(stream)
        handle = stream.handle
        assert handle is not None
        if stream.route is not None:
            return
        peer = handle.get_extra_info("peername")
        if self.closed or peer is None:  # accepted as we closed, or already gone
            handle.abort()
            return
        stream.source = (str(peer[0]), int(peer[1]))
        route = _Route(self, stream.source, self.settings.framing)
        stream.route = route
        self._routes.setdefault(stream.source, route)
        stream.ready(handle)  # a TLS listener's streams open once their handshake is done
        route.attach(stream)
        self._inbound.opened(stream)

    def stream_closed(self, stream: _Stream) -> None:
        if self._connections.remove(stream):
            self._inbound.closed(stream)

    def stream_malformed(self, stream: _Stream, error: MalformedFrame) -> None:
        self._log.warning(
            "malformed_stream", "tcp connection with %s closed: %s", display(*stream.source), error
        )
        self.events.input_malformed(stream.source, error)

    def stream_dropped(self, stream: _Stream, reason: ConnectionDropReason) -> None:
        """A connection is being closed for a limit (``reason`` names its counter)."""
        self._inbound.dropped(stream.source, reason)

    def forget(self, route: _Route) -> None:
        if self._routes.get(route.destination) is route:
            del self._routes[route.destination]

    def progressed(self) -> None:
        """A queue drained, or a route went: flush() looks again."""
        self._progress.set()

    # -- internals -------------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self.closed:
            raise TransportError(f"{what}: the transport is closed")

    def _cannot_send(self, destination: HostPort) -> TransportError:
        where = display(*destination)
        if self.closed:
            return TransportError(f"cannot send to tcp {where}: the transport is closed")
        return TransportError(
            f"cannot send to tcp {where}: no connection from there and not prepared;"
            " call prepare() for a destination before sending to it"
        )


def _check_same_framing(route: _Route, framing: StreamFraming, where: str) -> None:
    if route.framing.name != framing.name:
        raise ConfigError(
            f"tcp peer {where} is already prepared with framing {route.framing.name!r}, so it"
            f" cannot take {framing.name!r} too: one destination speaks one framing"
        )
