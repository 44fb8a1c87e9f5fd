"""The ``quic`` transport: packets over QUIC (RFC 9000, aioquic), always under TLS 1.3.

A peer chooses its mode with ``mode`` in its ``[peers.NAME]`` table:

- ``stream`` (the default): one long-lived bidirectional stream per connection,
  opened by the side that opened the connection and used by both sides; each
  packet carries a length prefix (:class:`~relay_core.LengthPrefixFraming`).
  Ordered and reliable, hence ``reliable = True`` for the transport.
- ``datagram`` (RFC 9221): one packet per DATAGRAM frame. Like UDP, a datagram
  may be lost; the node's duplicate window handles the rest. A packet must fit
  the peer's advertised ``max_datagram_frame_size`` and one QUIC packet.

Rules this module keeps:

- One client connection per destination, opened by :meth:`QuicTransport.prepare`
  without waiting for the handshake. Packets sent before the handshake completes
  wait in a bounded queue; if the handshake fails they are dropped and reported.
  Nothing is ever resent on a new connection: delivery stays at most once.
- On a stream, a destination is *full* while its queue, or what the peer has
  not yet acknowledged on the connection, reaches ``queue_limit`` bytes:
  :meth:`QuicTransport.send` then hands back a future that completes once it
  is not, and the node holds back senders that can wait. Packets of sends that
  cannot wait are still taken up to ``queue_limit + max_packet_size`` bytes
  (queued, or unacknowledged); beyond, they are dropped and reported unsent.
- Closing delivers: :meth:`QuicTransport.flush` waits until the peer has
  acknowledged every packet written (and queued packets have gone out);
  :meth:`QuicTransport.close` reports what it has not acknowledged as unsent,
  in packets, so the node counts their messages.
- A connection that ends (closed, timed out, refused) is replaced on the next
  send; after failed handshakes, only once a capped backoff has passed. A
  failed handshake (or ICMP: nothing listens) is reported as ``PeerUnreachable``
  holding for that backoff, after the packets that waited for it are dropped.
- A received packet is reported with the address that :meth:`QuicTransport.send`
  answers over the same connection: the destination for a connection we opened,
  the client's address for one we accepted.
- Servers are always verified (chain and name) against ``ca``, else the
  system's CA store; ``insecure_skip_verify`` is the loud, development-only
  exception, logged at every connection it makes.
- With ``client_ca``, a listener asks clients for a certificate and checks it
  itself (aioquic does neither), before a byte from the client is delivered.
- Each datagram is checked against the peer's limits before aioquic sees it:
  aioquic queues a DATAGRAM frame that fits no packet and then sends no other.
- Nothing raises out of an event-loop callback. aioquic's failures become
  :class:`~relay_core.TransportError`, reported through ``events.send_failed``
  and a rate-limited warning.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Coroutine, Mapping

from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.connection import QuicConnection

from relay_core import (
    ConfigError,
    HostPort,
    MessageTooLarge,
    RateLimitedLog,
    Transport,
    TransportError,
    TransportEvents,
)
from relay_core.interfaces import check_declared

from ._addresses import check_port, display, resolve
from ._budget import InputBudget
from ._certs import CertificateChain, load_trust_anchors
from ._quic_connection import _Connection
from ._quic_internals import (
    _AEAD_TAG_SIZE,
    _SHORT_HEADER_MAX,
    _AdmittingServer,
    _path_datagram_limit,
    _payload_room,
)
from ._quic_listener import ListenerLoad, _Listener
from ._quic_net import _listening_socket, logger
from ._quic_options import (
    _DEFAULT_BATCH_SIZE,
    _FLOW_WINDOW,
    _MAX_UDP_PAYLOAD,
    ALPN,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HANDSHAKES,
    DEFAULT_MAX_PACKET_SIZE,
    LISTEN_OPTIONS,
    PEER_OPTIONS,
    _boolean,
    _chain,
    _integer,
    _Mode,
    _peer_tls,
    _seconds,
    _trust_the_system_store,
)
from ._quic_peer import _Peer
from ._tls import TLS_FILE_OPTIONS

__all__ = ["ALPN", "DEFAULT_MAX_PACKET_SIZE", "ListenerLoad", "QuicTransport"]


class QuicTransport(Transport):
    """Packets over QUIC: on one stream per connection (reliable), or as datagrams (like UDP).

    Listener options (``[listen.quic]``) are keyword arguments; ``ca``,
    ``client_certificate`` and ``client_key`` here are defaults for every peer.
    ``udp_payload_size`` is the size of the UDP datagrams QUIC sends: 1200 passes
    any path (aioquic does no path MTU discovery); more is faster, but only where
    every path carries it (loopback, jumbo frames).
    ``max_connections`` and ``max_handshakes`` cap what one listener holds, and
    ``retry`` (on by default) makes every client prove its address with a Retry
    round trip before the listener keeps any state for it (see _quic_listener).
    ``max_buffered_input`` (``max_packet_size``, at least that) bounds the bytes
    of unfinished packets all connections hold together, accepted and opened
    alike (see _quic_connection); the connection that would pass it is closed,
    counted ``connections_over_budget``.
    Per-peer options (``[peers.NAME]``) are checked by :meth:`check_peer_options`
    and passed to :meth:`prepare`.
    """

    scheme = "quic"
    reliable = True  # true of the default stream mode; a datagram-mode peer is like UDP
    options = LISTEN_OPTIONS
    peer_options = PEER_OPTIONS
    path_options = TLS_FILE_OPTIONS

    def __init__(
        self,
        events: TransportEvents,
        *,
        certificate: str | None = None,
        private_key: str | None = None,
        client_ca: str | None = None,
        max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
        batch_size: int | None = None,
        idle_timeout: float = 30.0,
        max_datagram_frame_size: int = 65536,
        udp_payload_size: int = SMALLEST_MAX_DATAGRAM_SIZE,
        queue_limit: int = 16 * 1024 * 1024,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_handshakes: int | None = None,
        max_buffered_input: int | None = None,
        retry: bool = True,
        ca: str | None = None,
        client_certificate: str | None = None,
        client_key: str | None = None,
    ) -> None:
        super().__init__(events)
        where = "listen.quic"
        self.max_packet_size = _integer(where, "max_packet_size", max_packet_size, 1024,
                                        0xFFFFFFFF)
        if batch_size is None:
            batch_size = min(_DEFAULT_BATCH_SIZE, self.max_packet_size)
        self.batch_size = _integer(where, "batch_size", batch_size, 64, self.max_packet_size)
        self.queue_limit = _integer(where, "queue_limit", queue_limit, 0, 1 << 40)
        self._idle_timeout = _seconds(where, "idle_timeout", idle_timeout)
        self.max_connections = _integer(where, "max_connections", max_connections, 1, 1 << 20)
        if max_handshakes is None:
            max_handshakes = min(DEFAULT_MAX_HANDSHAKES, self.max_connections)
        self.max_handshakes = _integer(where, "max_handshakes", max_handshakes, 1,
                                       self.max_connections)
        if max_buffered_input is None:
            max_buffered_input = self.max_packet_size
        # One packet of the largest size must fit, or it could never arrive.
        self.max_buffered_input = _integer(where, "max_buffered_input", max_buffered_input,
                                           self.max_packet_size, 1 << 40)
        self.input_budget = InputBudget(self.max_buffered_input)
        """Shared by every connection, accepted or opened: what they hold of unfinished
        packets together."""
        self._retry = _boolean(where, "retry", retry)
        self.keepalive_interval = self._idle_timeout / 3
        self._max_datagram_frame_size = _integer(
            where, "max_datagram_frame_size", max_datagram_frame_size, 0, 65536)
        self._udp_payload_size = _integer(where, "udp_payload_size", udp_payload_size,
                                          SMALLEST_MAX_DATAGRAM_SIZE, _MAX_UDP_PAYLOAD)
        files = {"certificate": certificate, "private_key": private_key,
                 "client_certificate": client_certificate, "client_key": client_key}
        server_chain = _chain(where, files, ("certificate", "private_key"))
        self._client_chain = _chain(where, files, ("client_certificate", "client_key"))
        self.client_ca = None if client_ca is None else load_trust_anchors(where, "client_ca",
                                                                           client_ca)
        self._trust = None if ca is None else load_trust_anchors(where, "ca", ca)
        self._server_configuration = (
            None if server_chain is None else self._configuration(False, server_chain))
        self.path_datagram_limit = _path_datagram_limit(self._configuration(True, None))
        self.warnings = RateLimitedLog(logger)
        self.routes: dict[HostPort, _Connection] = {}
        """Connections clients opened to us, by the client's address."""
        self._peers: dict[HostPort, _Peer] = {}
        self._listeners: list[_Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @classmethod
    def check_peer_options(cls, options: Mapping[str, object], where: str) -> None:
        """Accept ``mode``, ``ca``, ``server_name``, ``client_certificate`` with
        ``client_key``, and ``insecure_skip_verify``; load the files they name."""
        _peer_tls(options, where)
        check_declared(cls.peer_options, options, where, "quic peers")

    async def listen(self, host: str, port: int) -> HostPort:
        """Accept QUIC connections on host:port (port 0 picks one); return the address bound."""
        where = display(host, port)
        self._check_open(where)
        check_port("quic", host, port, 0)
        configuration = self._server_configuration
        if configuration is None:
            raise ConfigError("[listen.quic] certificate and private_key are required to listen "
                              "(PEM files; `net-relay gen-cert` makes a development pair)")
        listener = _Listener(self)
        try:
            udp, server = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _AdmittingServer(configuration=configuration,
                                         make_connection=listener.make_connection,
                                         admit=listener.admit, retry=self._retry),
                sock=await _listening_socket(host, port),
            )
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise TransportError(f"cannot listen on quic {where}: {reason}") from exc
        listener.server = server
        self._listeners.append(listener)
        bound = udp.get_extra_info("sockname")
        return str(bound[0]), int(bound[1])

    async def prepare(
        self, host: str, port: int, options: Mapping[str, object] | None = None
    ) -> HostPort:
        """Resolve host:port and start connecting to it, without waiting for the handshake.

        Packets sent meanwhile wait in a queue, full at ``queue_limit`` bytes (see
        the module's rules). One connection serves each destination, so preparing it again with other
        ``options`` is a ConfigError.
        """
        options = dict(options or {})
        where = f"peer quic://{display(host, port)}"
        tls = _peer_tls(options, where)
        self._check_open(display(host, port))
        check_port("quic", host, port, 1)
        destination = (await resolve("quic", host, port, socket.SOCK_DGRAM))[0][1]
        peer = self._peers.get(destination)
        if peer is not None:
            if peer.options != options:
                raise ConfigError(f"[{where}]: {peer.label} is already prepared with options "
                                  f"{peer.options}; one connection serves a destination")
            return destination
        peer = self._peers[destination] = _Peer(self, destination, host, tls, options)
        try:
            await peer.connect()
        except TransportError:
            del self._peers[destination]
            raise
        return destination

    def packet_limits(self, destination: HostPort) -> tuple[int, int]:
        """Datagram-mode destinations take one QUIC packet's worth: batch to fit it."""
        peer = self._peers.get(destination)
        connection = self.routes.get(destination)
        datagram = (peer.tls.mode if peer is not None
                    else connection.mode if connection is not None else _Mode.STREAM)
        if datagram is not _Mode.DATAGRAM:
            return self.batch_size, self.max_packet_size
        room = _payload_room(self._udp_payload_size - _SHORT_HEADER_MAX - _AEAD_TAG_SIZE)
        return room, room

    def listener_load(self) -> ListenerLoad:
        """What this transport's listeners hold now: connections, handshakes, connection IDs."""
        return sum((listener.load for listener in self._listeners), ListenerLoad())

    @property
    def buffered_input(self) -> int:
        """Bytes of unfinished packets all connections hold now (at most ``max_buffered_input``,
        plus the datagram being read)."""
        return self.input_budget.held

    def waiting(self, destination: HostPort) -> int:
        """Packets for ``destination`` that wait for its handshake."""
        peer = self._peers.get(destination)
        return peer.waiting if peer is not None else 0

    def send(self, destination: HostPort, packet: bytes) -> asyncio.Future[None] | None:
        """Send one packet over the connection to (or from) ``destination``; on a stream,
        a future while the destination is full (see the module's rules)."""
        if len(packet) > self.max_packet_size:
            raise MessageTooLarge(len(packet), self.max_packet_size,
                                  "raise [listen.quic] max_packet_size to allow it")
        peer = self._peers.get(destination)
        if peer is not None:
            return peer.send(packet)
        connection = self.routes.get(destination)
        if connection is None or not connection.is_open:
            self._check_open(display(*destination))
            raise TransportError(f"cannot send to quic {display(*destination)}: no connection; "
                                 "call prepare() for a destination before sending to it")
        return connection.send_packet(packet)

    async def flush(self) -> None:
        """Return once every packet sent is acknowledged by its peer, packets waiting for a
        handshake included (the node bounds this wait with its close grace)."""
        # aioquic tells no one when acknowledgements arrive: look every few milliseconds.
        while any(peer.holding() for peer in self._peers.values()) or any(
                connection.is_open and connection.pending()
                for connection in self.routes.values()):
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Close every connection (telling each peer) and every listener; idempotent."""
        if self._closed:
            return
        self._closed = True
        for peer in self._peers.values():
            peer.close()
        for listener in self._listeners:
            listener.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._peers.clear()
        self._listeners.clear()
        self.routes.clear()
        await asyncio.sleep(0)  # the closed sockets are released on the next turn of the loop

    # -- for _Peer and _Listener

    def spawn(self, coroutine: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def open_connection(self, peer: _Peer) -> _Connection:
        """A new connection to ``peer``, its handshake started, on a socket of its own."""
        self._check_open(peer.label)
        quic = QuicConnection(configuration=self._client_configuration(peer))
        try:
            udp, connection = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Connection(quic, peer, self.events, self.max_packet_size, peer.tls.mode,
                                    self.queue_limit, self.input_budget),
                remote_addr=peer.destination,
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise TransportError(exc.errno, f"cannot connect to {peer.label}: {reason}") from exc
        connection.remote = peer.destination
        if self._closed:
            connection.shut()
            self._check_open(peer.label)
        connection.connect(udp.get_extra_info("peername"))
        return connection

    # -- helpers

    def _configuration(self, is_client: bool, chain: CertificateChain | None
                       ) -> QuicConfiguration:
        configuration = QuicConfiguration(
            is_client=is_client,
            alpn_protocols=[ALPN],
            idle_timeout=self._idle_timeout,
            max_datagram_frame_size=self._max_datagram_frame_size or None,
            max_datagram_size=self._udp_payload_size,
            max_data=_FLOW_WINDOW,
            max_stream_data=_FLOW_WINDOW,
        )
        if chain is not None:
            # aioquic's public loader takes file paths and parses them at every
            # connection; these fields take the objects loaded and checked once.
            configuration.certificate = chain.certificate
            configuration.certificate_chain = list(chain.intermediates)
            configuration.private_key = chain.private_key
        return configuration

    def _client_configuration(self, peer: _Peer) -> QuicConfiguration:
        tls = peer.tls
        configuration = self._configuration(True, tls.chain or self._client_chain)
        configuration.server_name = peer.server_name
        configuration.verify_mode = ssl.CERT_NONE if tls.insecure else ssl.CERT_REQUIRED
        trust = tls.trust or self._trust
        if trust is not None:
            configuration.load_verify_locations(cadata=trust)
        else:
            _trust_the_system_store(configuration)
        return configuration

    def _check_open(self, where: str) -> None:
        if self._closed:
            raise TransportError(f"quic {where}: the transport is closed")
