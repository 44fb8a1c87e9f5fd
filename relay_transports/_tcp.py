"""The ``tcp`` transport: length-prefixed packets on TCP connections, optionally over TLS.

Rules this module keeps:

- One route per destination, in one table. An *outbound* route (made by
  :meth:`TcpTransport.prepare`, which starts connecting) owns at most one
  connection at a time. After a loss or a failed attempt it connects again only
  when packets wait for it (at once if some are queued, else at the next send),
  retrying with capped exponential backoff and full jitter while they wait; so
  a connection that the peer closed for idleness is not reopened to sit idle.
- An *inbound* route lives as long as its accepted connection and is keyed by
  that connection's remote ``(host, port)``, the source handed to
  ``events.packet_received``: a reply goes back on the connection its request
  came in on, even to a client with no listener.
- At most once: a packet is written to at most one connection, once. It waits
  in its route's queue only while it cannot be written (not connected yet, TLS
  handshake running, write buffer above its high-water mark) and leaves from
  there in order. What was written to a connection that then fails is lost and
  reported, never written again.
- Bounded memory: a queue holds at most ``queue_limit`` bytes (an empty queue
  takes one packet of any allowed size, so a large message can wait for a
  connection), a connection stops taking writes above ``4 * batch_size``
  buffered bytes, and a reader holds at most one partial packet.
- Nothing raises out of an event-loop callback. Failures after ``send``
  returned go to ``events.send_failed``; bad input from a client (a length
  above ``max_packet_size``, a failed TLS handshake) is logged at WARNING,
  rate-limited, and closes only that connection.

Reading uses protocol callbacks rather than stream coroutines, and a packet is
one ``transport.write`` (the node already coalesces frames up to
``batch_size``). Listening TLS starts after the accept (``loop.start_tls``)
instead of through ``create_server(ssl=...)``, because asyncio drops the
handshake failures of accepted connections without a word.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import random
import socket
import ssl
from collections import deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, cast

from relay_core import (
    ConfigError,
    HostPort,
    MalformedFrame,
    MessageTooLarge,
    Transport,
    TransportError,
    TransportEvents,
    hookimpl,
)
from relay_core._framing import StreamDeframer, frame_for_stream
from relay_core._ratelog import RateLimitedLog

from ._tls import check_pem_path, client_context, describe_tls_error, server_context

__all__ = ["TcpTransport"]

logger = logging.getLogger(__name__)

_KIB = 1024
_MIB = 1024 * _KIB
_MAX_PACKET = 0xFFFFFFFF  # the length prefix is a u32
_BATCH_SIZE = 256 * _KIB  # the default, unless max_packet_size is smaller
_MAX_SECONDS = 86400.0
_CLOSE_GRACE = 1.0  # seconds close() gives connections to flush their write buffers
_KEEPALIVE_PROBES = 3
_PEER_OPTIONS = ("tls", "ca", "client_certificate", "client_key", "server_name")
_PEM_OPTIONS = ("ca", "client_certificate", "client_key")


def _display(host: str, port: object) -> str:
    """``host:port`` as a user writes it, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(error: BaseException) -> str:
    """Why ``error`` happened, in words (asyncio puts addresses, not reasons, in strerror)."""
    if isinstance(error, ssl.SSLError):
        return describe_tls_error(error)
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno)
    if isinstance(error, ConnectionResetError):
        return "connection reset by the peer"
    return str(error) or type(error).__name__


def _error(code: int | None, text: str) -> TransportError:
    """A TransportError that carries ``code`` as its errno when there is one."""
    return TransportError(text) if code is None else TransportError(code, text)


@dataclass(frozen=True, slots=True)
class _Settings:
    """The checked ``[listen.tcp]`` options that every connection follows."""

    max_packet_size: int
    batch_size: int
    queue_limit: int
    connect_timeout: float
    backoff_initial: float
    backoff_max: float
    keepalive: float
    """Idle seconds before the first keepalive probe; 0 turns keepalive off."""
    idle_timeout: float | None

    @property
    def high_water(self) -> int:
        """Buffered bytes above which a connection takes no more writes until it drains."""
        return 4 * self.batch_size


def _integer(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"[listen.tcp] {name} = {value!r} is not allowed: an integer from {low} to {high}"
        )
    return value


def _seconds(name: str, value: object, *, zero: str = "") -> float:
    """A duration in seconds; ``zero`` says what 0 means, if 0 is allowed."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else -1
    if not (0 < number <= _MAX_SECONDS or (zero and number == 0)):
        allowed = f"a number of seconds above 0, at most {_MAX_SECONDS:g}"
        if zero:
            allowed = f"a number of seconds from 0 ({zero}) to {_MAX_SECONDS:g}"
        raise ConfigError(f"[listen.tcp] {name} = {value!r} is not allowed: {allowed}")
    return float(number)


def _both_or_neither(where: str, options: Mapping[str, object], first: str, second: str) -> None:
    if (options.get(first) is None) != (options.get(second) is None):
        raise ConfigError(f"[{where}] {first} and {second} go together: set both or neither")


def _tune(sock: Any, keepalive: float) -> None:
    """Turn Nagle off and keepalive on, with the knobs this platform has."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not keepalive:
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        idle = max(1, math.ceil(keepalive))
        knobs = (
            (getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", None)), idle),
            (getattr(socket, "TCP_KEEPINTVL", None), max(1, idle // _KEEPALIVE_PROBES)),
            (getattr(socket, "TCP_KEEPCNT", None), _KEEPALIVE_PROBES),
        )
        for option, value in knobs:
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:
        logger.debug("tcp socket options not applied: %s", exc)


class _Stream(asyncio.Protocol):
    """One TCP connection: splits what it reads into packets and writes whole frames."""

    def __init__(self, owner: TcpTransport, route: _Route | None, source: HostPort) -> None:
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
        self._deframer = StreamDeframer(owner.settings.max_packet_size)
        self._deliver = owner.events.packet_received
        self._timer: asyncio.TimerHandle | None = None

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
        try:
            packets = self._deframer.feed(data)
        except MalformedFrame as exc:
            self._failed = True
            self.owner.stream_malformed(self, exc)
            self.abort()
            return
        for packet in packets:
            self._deliver(packet, self.source)

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

    def _watch_idle(self) -> None:
        idle_timeout = self.owner.settings.idle_timeout
        if idle_timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        """Close after a whole ``idle_timeout`` period with no byte read or written."""
        if self.active:
            self.active = False
            self._watch_idle()
            return
        self.idle = True
        logger.debug("tcp connection with %s idle; closing it", _display(*self.source))
        self.close()


class _Route:
    """Where packets for one destination go: its connection, or a bounded queue."""

    def __init__(self, owner: TcpTransport, destination: HostPort) -> None:
        self.owner = owner
        self.destination = destination
        self.stream: _Stream | None = None
        self.queue: deque[bytes] = deque()
        self.queued = 0

    def send(self, frame: bytes) -> None:
        stream = self.stream
        if stream is not None and not stream.paused and not self.queue:
            stream.write(frame)
        elif self.queue and self.queued + len(frame) > self.owner.settings.queue_limit:
            text = (
                f"tcp queue to {_display(*self.destination)} is full ({self.queued} bytes "
                f"waiting, queue_limit {self.owner.settings.queue_limit}); packet dropped"
            )
            self.owner.events.send_failed(self.destination, TransportError(errno.ENOBUFS, text))
        else:
            self.queue.append(frame)
            self.queued += len(frame)

    def attach(self, stream: _Stream) -> None:
        self.stream = stream
        stream.route = self
        self.flush()

    def flush(self) -> None:
        """Write queued frames, in order, while the connection takes them."""
        stream, queue = self.stream, self.queue
        while queue and stream is not None and not stream.paused:
            frame = queue.popleft()
            self.queued -= len(frame)
            stream.write(frame)

    def drop_queue(self) -> int:
        """Forget every queued frame; return how many there were."""
        count = len(self.queue)
        self.queue.clear()
        self.queued = 0
        return count

    def lost(self, stream: _Stream, error: BaseException | None) -> None:
        """An accepted connection is gone: its route goes with it."""
        self.stream = None
        self.owner.forget(self)
        dropped = self.drop_queue()
        if self.owner.closed:
            return
        if error is not None or dropped:
            where = _display(*self.destination)
            reason = _reason(error) if error is not None else "closed"
            text = f"tcp connection from {where} lost ({reason}); {dropped} queued packets dropped"
            self.owner.events.send_failed(self.destination, TransportError(text))


class _Outbound(_Route):
    """A route that connects to its destination and reconnects after a loss."""

    def __init__(
        self,
        owner: TcpTransport,
        destination: HostPort,
        tls: ssl.SSLContext | None,
        server_name: str | None,
    ) -> None:
        super().__init__(owner, destination)
        self.tls = tls
        self.server_name = server_name
        self._connecting = False
        self._attempts = 0  # failures since the last connection that stayed up
        self._connected_at = 0.0

    def send(self, frame: bytes) -> None:
        if self.stream is None and not self._connecting:
            self.start()
        super().send(frame)

    def start(self) -> None:
        if self.stream is None and not self._connecting and not self.owner.closed:
            self._connecting = True
            self.owner.spawn(self._connect_until_up())

    def lost(self, stream: _Stream, error: BaseException | None) -> None:
        self.stream = None
        if stream.idle or self.owner.closed:
            self._attempts = 0
            return
        uptime = asyncio.get_running_loop().time() - self._connected_at
        self._attempts = 1 if uptime >= self.owner.settings.backoff_max else self._attempts + 1
        reason = _reason(error) if error is not None else "closed by the peer"
        if self.tls and not stream.received:
            reason += "; a TLS server that wants a client certificate closes like this"
        text = (
            f"tcp connection to {_display(*self.destination)} lost ({reason}); packets "
            "written to it may not have arrived; reconnecting"
        )
        self.owner.events.send_failed(self.destination, TransportError(text))
        if self.queue:
            self.start()

    async def _connect_until_up(self) -> None:
        """Connect, retrying with backoff while packets wait; with none, the next send retries."""
        try:
            while not self.owner.closed:
                if self._attempts:
                    await asyncio.sleep(self._backoff())
                try:
                    stream = await self._connect()
                except TransportError as exc:
                    self._attempts += 1
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
        finally:
            self._connecting = False

    def _backoff(self) -> float:
        """Full jitter: uniform up to a cap that doubles with each failure."""
        settings = self.owner.settings
        cap = settings.backoff_initial * 2.0 ** min(self._attempts - 1, 40)
        return random.uniform(0.0, min(settings.backoff_max, cap))

    async def _connect(self) -> _Stream:
        settings = self.owner.settings
        host, port = self.destination
        where = _display(host, port)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(settings.connect_timeout):
                _, stream = await loop.create_connection(
                    lambda: _Stream(self.owner, self, self.destination),
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
            raise TransportError(f"tls handshake with tcp {where} failed: {_reason(exc)}") from None
        except ConnectionResetError as exc:
            hint = " (is it listening with TLS?)" if self.tls else ""
            raise _error(
                exc.errno, f"cannot connect to tcp {where}: {_reason(exc)}{hint}"
            ) from None
        except OSError as exc:
            raise _error(exc.errno, f"cannot connect to tcp {where}: {_reason(exc)}") from None
        return stream


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
      connects or its buffer drains; a packet beyond is dropped and reported.
    - ``connect_timeout`` (5), ``backoff_initial`` (0.05), ``backoff_max`` (5):
      one connection attempt, TLS handshake included, and the bounds of the
      jittered wait between attempts.
    - ``keepalive`` (15; 0 turns it off): idle time before TCP keepalive
      probes; a peer that answers none of three is declared dead after about
      twice this.
    - ``idle_timeout`` (none): close a connection after one to two such periods
      without a byte read or written; an outbound one reopens at the next send.
    - ``certificate``, ``private_key`` (PEM paths, both or neither): listen
      with TLS. ``client_ca``: also require client certificates it signed.
    - ``ca``, ``client_certificate``, ``client_key``: defaults for peers with
      ``tls = true`` (see :meth:`check_peer_options`); without ``ca``, servers
      are verified against the system trust store.
    """

    scheme = "tcp"
    reliable = True

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
        idle_timeout: float | None = None,
        certificate: str | None = None,
        private_key: str | None = None,
        client_ca: str | None = None,
        ca: str | None = None,
        client_certificate: str | None = None,
        client_key: str | None = None,
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
        )
        self.max_packet_size = self.settings.max_packet_size
        self.batch_size = self.settings.batch_size
        self._server_tls = _server_tls(certificate, private_key, client_ca)
        self._client_defaults = _client_defaults(ca, client_certificate, client_key)
        self._client_contexts: dict[tuple[str | None, ...], ssl.SSLContext] = {}
        self._routes: dict[HostPort, _Route] = {}
        self._servers: list[asyncio.Server] = []
        self._streams: set[_Stream] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._drained = asyncio.Event()
        self._log = RateLimitedLog(logger)
        self.closed = False

    @classmethod
    def check_peer_options(cls, options: Mapping[str, object], where: str) -> None:
        """Accept ``tls`` (bool), ``ca``, ``client_certificate``, ``client_key`` (PEM
        paths) and ``server_name`` (the name to verify; default the address host)."""
        unknown = sorted(set(options) - set(_PEER_OPTIONS))
        if unknown:
            hint = ""
            if any("verify" in key or "insecure" in key for key in unknown):
                hint = (
                    "; certificate checks cannot be turned off: to trust a self-signed "
                    "server, set ca to its certificate"
                )
            raise ConfigError(
                f"[{where}]: unknown key(s) {', '.join(unknown)}; tcp peers take "
                f"address, codec, compressor, {', '.join(_PEER_OPTIONS)}{hint}"
            )
        tls = options.get("tls", False)
        if not isinstance(tls, bool):
            raise ConfigError(f"[{where}] tls = {tls!r} is not allowed: true or false")
        others = sorted(set(options) - {"tls"})
        if not tls and others:
            raise ConfigError(f"[{where}] {', '.join(others)} only apply to TLS: add tls = true")
        for name in _PEM_OPTIONS:
            if name in options:
                check_pem_path(where, name, options[name])
        _both_or_neither(where, options, "client_certificate", "client_key")
        server_name = options.get("server_name")
        if server_name is not None and (not isinstance(server_name, str) or not server_name):
            raise ConfigError(
                f"[{where}] server_name = {server_name!r} is not allowed: "
                "a host name or IP address (string)"
            )

    async def listen(self, host: str, port: int) -> HostPort:
        """Accept connections on host:port (port 0 picks a free port); return what was bound."""
        where = _display(host, port)
        self._check_open(f"cannot listen on tcp {where}")
        _check_port(where, port, 0)
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                lambda: _Stream(self, None, ("", 0)), host, port, backlog=1024, reuse_address=True
            )
        except OSError as exc:
            raise _error(exc.errno, f"cannot listen on tcp {where}: {_reason(exc)}") from None
        self._servers.append(server)
        sockname = server.sockets[0].getsockname()
        return (str(sockname[0]), int(sockname[1]))

    async def prepare(
        self, host: str, port: int, options: Mapping[str, object] | None = None
    ) -> HostPort:
        """Resolve host:port and start connecting to it in the background.

        Returns the numeric destination at once; packets sent before the
        connection is up wait in its queue. ``options`` are the peer's (see
        :meth:`check_peer_options`); a destination prepared before keeps the
        TLS settings it was first prepared with.
        """
        where = _display(host, port)
        self._check_open(f"cannot connect to tcp {where}")
        _check_port(where, port, 1)
        destination = await _resolve(host, port)
        self._check_open(f"cannot connect to tcp {where}")
        if isinstance(self._routes.get(destination), _Outbound):
            return destination
        options = options or {}
        self.check_peer_options(options, f"tcp peer {where}")
        tls, server_name = self._client_tls(host, where, options)
        route = _Outbound(self, destination, tls, server_name)
        self._routes[destination] = route
        route.start()
        return destination

    def send(self, destination: HostPort, packet: bytes) -> None:
        """Write one packet on the destination's connection, or queue it until it can be."""
        if len(packet) > self.max_packet_size:
            raise MessageTooLarge(len(packet), self.max_packet_size)
        route = self._routes.get(destination)
        if route is None:
            raise self._cannot_send(destination)
        if not packet:
            raise TransportError("tcp cannot carry an empty packet: a packet has 1 byte or more")
        route.send(frame_for_stream(packet))

    async def close(self) -> None:
        """Stop listening, close every connection, and report packets still queued as lost."""
        if self.closed:
            return
        self.closed = True
        for server in self._servers:
            server.close()
        for task in self._tasks:
            task.cancel()
        lost = sum(route.drop_queue() for route in self._routes.values())
        self._routes.clear()
        await self._close_streams()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        if lost:
            text = f"tcp transport closed with {lost} packets unsent"
            self.events.send_failed(None, TransportError(errno.ESHUTDOWN, text))

    # -- for routes and streams ------------------------------------------

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stream_opened(self, stream: _Stream) -> None:
        self._streams.add(stream)
        handle = stream.handle
        assert handle is not None
        if stream.route is not None:
            return
        peer = handle.get_extra_info("peername")
        if self.closed or peer is None:  # accepted as we closed, or already gone
            handle.abort()
            return
        stream.source = (str(peer[0]), int(peer[1]))
        route = _Route(self, stream.source)
        stream.route = route
        self._routes.setdefault(stream.source, route)
        if self._server_tls is None:
            stream.ready(handle)
            route.attach(stream)
        else:
            handle.pause_reading()  # not a byte may reach the stream before start_tls takes it over
            self.spawn(self._start_tls(stream, route, handle, self._server_tls))

    def stream_closed(self, stream: _Stream) -> None:
        self._streams.discard(stream)
        if self.closed and not self._streams:
            self._drained.set()

    def stream_malformed(self, stream: _Stream, error: MalformedFrame) -> None:
        self._log.warning(
            "malformed_stream", "tcp connection with %s closed: %s", _display(*stream.source), error
        )

    def forget(self, route: _Route) -> None:
        if self._routes.get(route.destination) is route:
            del self._routes[route.destination]

    # -- internals -------------------------------------------------------

    async def _start_tls(
        self, stream: _Stream, route: _Route, raw: asyncio.Transport, context: ssl.SSLContext
    ) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.settings.connect_timeout
        tls = None
        try:
            tls = await loop.start_tls(
                raw, stream, context, server_side=True, ssl_handshake_timeout=timeout
            )
        except OSError as exc:
            self._log.warning(
                "tls_handshake",
                "tls handshake with tcp client %s failed: %s",
                _display(*stream.source),
                _reason(exc),
            )
        finally:
            if tls is None or stream.dead:  # its connection_lost will not be called now
                self.stream_closed(stream)
                self.forget(route)
        if tls is None or stream.dead:
            return
        stream.ready(tls)
        route.attach(stream)

    async def _close_streams(self) -> None:
        """Close every connection, flushing for up to ``_CLOSE_GRACE`` seconds, then abort."""
        if not self._streams:
            return
        for stream in list(self._streams):
            stream.close()
        try:
            async with asyncio.timeout(_CLOSE_GRACE):
                await self._drained.wait()
        except TimeoutError:
            for stream in list(self._streams):
                stream.abort()
            await asyncio.sleep(0)  # aborted transports report connection_lost on the next turn

    def _client_tls(
        self, host: str, where: str, options: Mapping[str, object]
    ) -> tuple[ssl.SSLContext | None, str | None]:
        """The context and server name for a peer: its own options over the transport's."""
        if not options.get("tls", False):
            return None, None
        files = tuple(
            _path_or_none(options.get(name, self._client_defaults[name])) for name in _PEM_OPTIONS
        )
        context = self._client_contexts.get(files)
        if context is None:
            context = client_context(f"tcp peer {where}", *files)
            self._client_contexts[files] = context
        return context, str(options.get("server_name") or host)

    def _check_open(self, what: str) -> None:
        if self.closed:
            raise TransportError(f"{what}: the transport is closed")

    def _cannot_send(self, destination: HostPort) -> TransportError:
        where = _display(*destination)
        if self.closed:
            return TransportError(f"cannot send to tcp {where}: the transport is closed")
        return TransportError(
            f"cannot send to tcp {where}: no connection from there and not prepared;"
            " call prepare() for a destination before sending to it"
        )


def _settings(
    max_packet_size: object,
    batch_size: object,
    queue_limit: object,
    connect_timeout: object,
    backoff_initial: object,
    backoff_max: object,
    keepalive: object,
    idle_timeout: object,
) -> _Settings:
    size = _integer("max_packet_size", max_packet_size, 1 * _KIB, _MAX_PACKET)
    initial = _seconds("backoff_initial", backoff_initial)
    most = _seconds("backoff_max", backoff_max)
    if most < initial:
        raise ConfigError(
            f"[listen.tcp] backoff_max = {backoff_max!r} is not allowed: "
            f"at least backoff_initial ({backoff_initial!r})"
        )
    return _Settings(
        max_packet_size=size,
        batch_size=_integer(
            "batch_size", min(_BATCH_SIZE, size) if batch_size is None else batch_size, 64, size
        ),
        queue_limit=_integer("queue_limit", queue_limit, 0, 1 << 40),
        connect_timeout=_seconds("connect_timeout", connect_timeout),
        backoff_initial=initial,
        backoff_max=most,
        keepalive=_seconds("keepalive", keepalive, zero="off"),
        idle_timeout=None if idle_timeout is None else _seconds("idle_timeout", idle_timeout),
    )


def _server_tls(
    certificate: object, private_key: object, client_ca: object
) -> ssl.SSLContext | None:
    where = "listen.tcp"
    options = {"certificate": certificate, "private_key": private_key}
    _both_or_neither(where, options, "certificate", "private_key")
    if certificate is None:
        if client_ca is not None:
            raise ConfigError(
                f"[{where}] client_ca needs certificate and private_key: "
                "client certificates are only checked over TLS"
            )
        return None
    return server_context(
        where,
        check_pem_path(where, "certificate", certificate),
        check_pem_path(where, "private_key", private_key),
        None if client_ca is None else check_pem_path(where, "client_ca", client_ca),
    )


def _client_defaults(ca: object, certificate: object, key: object) -> dict[str, str | None]:
    where = "listen.tcp"
    options = {"ca": ca, "client_certificate": certificate, "client_key": key}
    _both_or_neither(where, options, "client_certificate", "client_key")
    return {
        name: None if value is None else check_pem_path(where, name, value)
        for name, value in options.items()
    }


def _path_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _check_port(where: str, port: object, low: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        raise TransportError(f"tcp {where}: port must be an integer from {low} to 65535")


async def _resolve(host: str, port: int) -> HostPort:
    """A numeric address for host:port: literals at once, names with the loop's resolver."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise TransportError(
                f"cannot resolve tcp {_display(host, port)}: {_reason(exc)}"
            ) from None
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return (str(sockaddr[0]), int(sockaddr[1]))
    raise TransportError(f"cannot resolve tcp {_display(host, port)}: no IP address")


@hookimpl
def net_relay_transports() -> list[type[Transport]]:
    """The TCP transport, for the scheme ``tcp``."""
    return [TcpTransport]
