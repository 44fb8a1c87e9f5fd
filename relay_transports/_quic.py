"""The ``quic`` transport: packets over QUIC (RFC 9000, aioquic), always under TLS 1.3.

A peer chooses its mode with ``mode`` in its ``[peers.NAME]`` table:

- ``stream`` (the default): one long-lived bidirectional stream per connection,
  opened by the side that opened the connection and used by both sides; each
  packet carries a length prefix (:func:`~relay_core._framing.frame_for_stream`).
  Ordered and reliable, hence ``reliable = True`` for the transport.
- ``datagram`` (RFC 9221): one packet per DATAGRAM frame. Like UDP, a datagram
  may be lost; the node's duplicate window handles the rest. A packet must fit
  the peer's advertised ``max_datagram_frame_size`` and one QUIC packet.

Rules this module keeps:

- One client connection per destination, opened by :meth:`QuicTransport.prepare`
  without waiting for the handshake. Packets sent before the handshake completes
  wait in a bounded queue; if the handshake fails they are dropped and reported.
  Nothing is ever resent on a new connection: delivery stays at most once.
- A connection that ends (closed, timed out, refused) is replaced on the next
  send; after failed handshakes, only once a capped backoff has passed.
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
import enum
import errno
import logging
import socket
import ssl
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.connection import NetworkAddress, QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    DatagramFrameReceived,
    HandshakeCompleted,
    QuicEvent,
    StreamDataReceived,
)
from aioquic.quic.packet import QuicErrorCode
from aioquic.quic.packet_builder import PACKET_NUMBER_SEND_SIZE
from aioquic.tls import Alert, AlertDescription, verify_certificate
from cryptography import x509

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

from ._certs import CertificateChain, load_certificate_chain, load_trust_anchors

__all__ = ["ALPN", "DEFAULT_MAX_PACKET_SIZE", "QuicTransport"]

logger = logging.getLogger(__name__)

ALPN = "net-relay/1"
"""The TLS application protocol both ends must offer."""

DEFAULT_MAX_PACKET_SIZE = 64 * 1024 * 1024 + 64 * 1024
"""64 MiB of frames plus room for the packet and frame headers."""

_DEFAULT_BATCH_SIZE = 256 * 1024
_PEER_KEYS = ("mode", "ca", "server_name", "client_certificate", "client_key",
              "insecure_skip_verify")
_FLOW_WINDOW = 8 * 1024 * 1024  # per stream and per connection: a few batches in flight
_MAX_UDP_PAYLOAD = 65527  # what one IPv4 datagram can carry after the UDP header
_MAX_CONNECTION_ID = 20  # RFC 9000 section 17.2: a peer's connection IDs are at most this long
_AEAD_TAG_SIZE = 16  # every TLS 1.3 cipher suite QUIC uses
_SHORT_HEADER_MAX = 1 + _MAX_CONNECTION_ID + PACKET_NUMBER_SEND_SIZE
_FIRST_RETRY = 0.1  # seconds between the first failed handshake and the next attempt
_LAST_RETRY = 5.0  # the cap on the backoff between handshake attempts
_PATH_ERRORS = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
_DATAGRAM_HINT = 'use mode = "stream" for this peer to send larger packets'
_STREAM_ERROR = QuicErrorCode.PROTOCOL_VIOLATION
_BAD_CERTIFICATE = QuicErrorCode.CRYPTO_ERROR + AlertDescription.bad_certificate


class _Mode(enum.Enum):
    STREAM = "stream"
    DATAGRAM = "datagram"


def _display(host: str, port: object) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- aioquic internals ---------------------------------------------------------
# aioquic 1.x exposes none of the three things below publicly. Each private
# access lives here, in one small function, and tests/test_quic_transport.py
# exercises each (mutual TLS, and datagrams against an advertised limit).


def _ask_for_client_certificate(connection: QuicConnection) -> None:
    """Make a server connection ask its client for a certificate.

    aioquic's TLS context has only a private flag for this, and the context is
    created when the first packet arrives: so wrap the method that creates it.
    """
    create_tls = connection._initialize

    def create_tls_and_ask(peer_cid: bytes) -> None:
        create_tls(peer_cid)
        connection.tls._request_client_certificate = True

    connection._initialize = create_tls_and_ask  # type: ignore[method-assign]


def _client_certificates(
    connection: QuicConnection,
) -> tuple[x509.Certificate, list[x509.Certificate]] | None:
    """The certificate (and chain) the client presented, or None if it sent none."""
    context = connection.tls
    certificate = context._peer_certificate
    return None if certificate is None else (certificate, context._peer_certificate_chain)


def _advertised_datagram_frame_size(connection: QuicConnection) -> int | None:
    """The peer's max_datagram_frame_size transport parameter; None if it takes no datagrams."""
    return connection._remote_max_datagram_frame_size


# -- limits ---------------------------------------------------------------------


def _payload_room(frame_size: int) -> int:
    """The largest n such that a DATAGRAM frame (type byte, varint n, n bytes) fits ``frame_size``."""
    for length_size in (1, 2, 4, 8):
        room = frame_size - 1 - length_size
        if room < 1 << (8 * length_size - 2):
            return max(room, 0)
    return 0


def _path_datagram_limit(configuration: QuicConfiguration) -> int:
    """The largest datagram one QUIC packet of ours can carry, whatever the peer advertised."""
    return _payload_room(configuration.max_datagram_size - _SHORT_HEADER_MAX - _AEAD_TAG_SIZE)


def _datagram_limit(connection: QuicConnection) -> int:
    """The largest packet a DATAGRAM frame may carry on this connection; 0 if none may."""
    advertised = _advertised_datagram_frame_size(connection)
    if not advertised:
        return 0
    return min(_payload_room(advertised), _path_datagram_limit(connection.configuration))


def _describe(event: ConnectionTerminated) -> str:
    """Why a connection ended, in words: aioquic's reason and the error code's name."""
    code = event.error_code
    if QuicErrorCode.CRYPTO_ERROR <= code < QuicErrorCode.CRYPTO_ERROR + 256:
        name = f"TLS alert {code - QuicErrorCode.CRYPTO_ERROR}"
    else:
        try:
            name = QuicErrorCode(code).name
        except ValueError:
            name = f"error {code:#x}"
    return f"{event.reason_phrase} ({name})" if event.reason_phrase else name


# -- options --------------------------------------------------------------------


def _integer(where: str, name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"[{where}] {name} = {value!r} is not allowed: an integer from "
                          f"{low} to {high}")
    return value


def _seconds(where: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ConfigError(f"[{where}] {name} = {value!r} is not allowed: a number of seconds "
                          "above 0, at most 3600")
    return float(value)


def _chain(where: str, options: Mapping[str, object], names: tuple[str, str]
           ) -> CertificateChain | None:
    """Load the certificate and key named by the two options, which come together or not at all."""
    given = [name for name in names if options.get(name) is not None]
    if not given:
        return None
    if len(given) == 1:
        missing = next(name for name in names if name not in given)
        raise ConfigError(f"[{where}] {given[0]} is set but {missing} is not; give both or neither")
    return load_certificate_chain(where, *((name, options[name]) for name in names))


@dataclass(frozen=True, slots=True)
class _PeerTls:
    """What one peer's ``[peers.NAME]`` table says about its mode and TLS."""

    mode: _Mode
    trust: bytes | None
    """PEM CA certificates that must have signed the server's; None: the transport default."""
    server_name: str | None
    """Name the server's certificate must carry; None: the host of its address."""
    chain: CertificateChain | None
    """Client certificate to present; None: the transport default."""
    insecure: bool


def _peer_tls(options: Mapping[str, object], where: str) -> _PeerTls:
    unknown = sorted(set(options) - set(_PEER_KEYS))
    if unknown:
        raise ConfigError(f"[{where}]: unknown key(s) {', '.join(unknown)}; quic peers take "
                          f"address, codec, compressor and {', '.join(_PEER_KEYS)}")
    mode = options.get("mode", _Mode.STREAM.value)
    if mode not in (_Mode.STREAM.value, _Mode.DATAGRAM.value):
        raise ConfigError(f'[{where}] mode = {mode!r} is not allowed: "stream" or "datagram"')
    server_name = options.get("server_name")
    if server_name is not None and (not isinstance(server_name, str) or not server_name):
        raise ConfigError(f"[{where}] server_name = {server_name!r} is not allowed: a host name "
                          "or IP address the server's certificate names")
    insecure = options.get("insecure_skip_verify", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"[{where}] insecure_skip_verify = {insecure!r} is not allowed: "
                          "true or false")
    if insecure and options.get("ca") is not None:
        raise ConfigError(f"[{where}] ca and insecure_skip_verify = true contradict each other; "
                          "drop insecure_skip_verify to verify the server against ca")
    ca = options.get("ca")
    return _PeerTls(
        mode=_Mode(mode),
        trust=None if ca is None else load_trust_anchors(where, "ca", ca),
        server_name=server_name,
        chain=_chain(where, options, ("client_certificate", "client_key")),
        insecure=insecure,
    )


# -- connections ----------------------------------------------------------------


class _Owner(Protocol):
    """Who a connection reports its handshake and its end to."""

    def connection_ready(self, connection: _Connection) -> None: ...

    def connection_ended(self, connection: _Connection, reason: str) -> None: ...


class _Connection(QuicConnectionProtocol):
    """Drives one QUIC connection and carries packets on its stream or in its datagrams.

    The owner calls :meth:`accept` once it accepts the handshake; before that,
    and once the connection is closing, nothing is delivered or sent.
    """

    def __init__(self, quic: QuicConnection, owner: _Owner, events: TransportEvents,
                 max_packet_size: int, mode: _Mode) -> None:
        super().__init__(quic)
        self.owner = owner
        self.events = events
        self.mode = mode
        self.remote: HostPort | None = None
        self.is_open = False
        self.established = False
        """True once accepted, and still after the connection ended."""
        self.refused = False
        """True if the connection ended with a TLS alert, even after the handshake."""
        self.datagram_limit = 0
        self._ended = False
        self._stream_id: int | None = None
        self._deframer = StreamDeframer(max_packet_size)
        self._udp: asyncio.DatagramTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._transmit_handle: asyncio.Handle | None = None
        self._keepalive: asyncio.TimerHandle | None = None

    @property
    def is_client(self) -> bool:
        return self._quic.configuration.is_client

    def accept(self) -> None:
        self.is_open = self.established = True

    def client_certificates(self) -> tuple[x509.Certificate, list[x509.Certificate]] | None:
        return _client_certificates(self._quic)

    # -- outbound

    def send_packet(self, packet: bytes) -> None:
        """Hand one packet to aioquic and transmit within this turn of the loop."""
        if self.mode is _Mode.DATAGRAM:
            if len(packet) > self.datagram_limit:
                raise MessageTooLarge(len(packet), self.datagram_limit, _DATAGRAM_HINT)
            self._quic.send_datagram_frame(packet)
        else:
            self._write_stream(packet)
        if self._transmit_handle is None:
            self._transmit_handle = self._loop.call_soon(self._transmit_now)

    def _write_stream(self, packet: bytes) -> None:
        if not packet:
            raise TransportError("a quic stream cannot carry an empty packet")
        if self._stream_id is None:
            self._stream_id = self._quic.get_next_available_stream_id()
        try:
            self._quic.send_stream_data(self._stream_id, frame_for_stream(packet))
        except (ValueError, RuntimeError) as exc:  # the peer stopped or reset our stream
            self.fail(f"the stream cannot be written: {exc}")
            raise TransportError(f"quic send to {self.label} failed: {exc}") from None

    def _transmit_now(self) -> None:
        self._transmit_handle = None
        self.transmit()

    def transmit(self) -> None:
        if self._udp is not None and not self._udp.is_closing():
            super().transmit()

    def keep_alive(self, interval: float) -> None:
        """Ping every ``interval`` seconds: the connection stays up while idle, and a
        vanished server is noticed by the idle timeout rather than by the next send."""
        self._keepalive = self._loop.call_later(interval, self._ping, interval)

    def _ping(self, interval: float) -> None:
        if not self._ended:
            self._quic.send_ping(0)
            self.transmit()
            self.keep_alive(interval)

    # -- ending

    def fail(self, reason: str, error_code: int = _STREAM_ERROR) -> None:
        """Close the connection because of something the peer did; deliver nothing more."""
        self.is_open = False
        self.close(error_code=error_code, reason_phrase=reason[:200])

    def shut(self) -> None:
        """Close, telling the peer, and release what the connection holds; report nothing."""
        if self._udp is not None and not self._udp.is_closing():
            self.close()
        self._release()

    def _end(self, reason: str) -> None:
        self._release()
        self.owner.connection_ended(self, reason)

    def _release(self) -> None:
        self._ended = True
        self.is_open = False
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self.is_client and self._udp is not None:
            self._udp.close()  # a client connection has a socket of its own

    @property
    def label(self) -> str:
        return "quic://" + _display(*self.remote) if self.remote else "quic (unknown peer)"

    # -- asyncio and aioquic callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._udp = cast(asyncio.DatagramTransport, transport)  # asyncio's is not a subclass

    def datagram_received(self, data: bytes | str, addr: NetworkAddress) -> None:
        if self.remote is None:
            self.remote = (str(addr[0]), int(addr[1]))
        if not self._ended:
            super().datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        """A client's connected socket learns from ICMP that nobody listens there."""
        if self._ended or not self.is_client or not isinstance(exc, OSError):
            return
        if exc.errno in _PATH_ERRORS:  # no point in telling a peer that is not there
            self._end(exc.strerror or str(exc))

    def quic_event_received(self, event: QuicEvent) -> None:
        if self._ended:
            return
        if isinstance(event, StreamDataReceived):
            self._stream_data(event)
        elif isinstance(event, DatagramFrameReceived):
            self._datagram(event.data)
        elif isinstance(event, HandshakeCompleted):
            self.datagram_limit = _datagram_limit(self._quic)
            self.owner.connection_ready(self)
        elif isinstance(event, ConnectionTerminated):
            code = event.error_code - QuicErrorCode.CRYPTO_ERROR
            self.refused = 0 <= code < 256  # a TLS alert, from either side
            self._end(_describe(event))

    def _stream_data(self, event: StreamDataReceived) -> None:
        if not self.is_open or self.remote is None:
            return
        if self._stream_id is None and not self.is_client:
            self._stream_id = event.stream_id
        if event.stream_id != self._stream_id:
            self.fail("net-relay carries packets on one stream per connection")
            return
        try:
            packets = self._deframer.feed(event.data)
        except MalformedFrame as exc:
            self.fail(str(exc))
            return
        if not self.is_client:
            self.mode = _Mode.STREAM  # replies go the way requests came
        for packet in packets:
            self.events.packet_received(packet, self.remote)

    def _datagram(self, packet: bytes) -> None:
        if self.is_open and self.remote is not None:
            if not self.is_client:
                self.mode = _Mode.DATAGRAM
            self.events.packet_received(packet, self.remote)


# -- the client side ----------------------------------------------------------------


class _Peer:
    """A destination this transport connects to: its connection and the packets waiting for it."""

    def __init__(self, transport: QuicTransport, destination: HostPort, server_name: str,
                 tls: _PeerTls, options: dict[str, object]) -> None:
        self.transport = transport
        self.options = options
        self.destination = destination
        self.server_name = tls.server_name or server_name
        self.tls = tls
        self.label = "quic://" + _display(*destination)
        self.connection: _Connection | None = None
        self.connecting: asyncio.Task[None] | None = None
        self._backlog: list[bytes] = []
        self._backlog_bytes = 0
        self._failures = 0
        self._not_before = 0.0

    def send(self, packet: bytes) -> None:
        connection = self.connection
        if connection is not None and connection.is_open:
            connection.send_packet(packet)
            return
        if self.tls.mode is _Mode.DATAGRAM:
            limit = self.transport.path_datagram_limit
            if len(packet) > limit:
                raise MessageTooLarge(len(packet), limit, _DATAGRAM_HINT)
        self._hold(packet)
        if connection is None and self.connecting is None:
            self.connecting = self.transport.spawn(self.reconnect())

    def _hold(self, packet: bytes) -> None:
        limit = self.transport.queue_limit
        if self._backlog_bytes + len(packet) > limit:
            text = (f"quic send to {self.label} dropped: {self._backlog_bytes} bytes already "
                    f"wait for the connection (queue_limit = {limit})")
            self.transport.events.send_failed(self.destination, TransportError(errno.ENOBUFS, text))
            return
        self._backlog.append(packet)
        self._backlog_bytes += len(packet)

    async def reconnect(self) -> None:
        try:
            delay = self._not_before - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.connect()
        except TransportError as exc:
            self._failed(str(exc))
        finally:
            self.connecting = None

    async def connect(self) -> None:
        self.connection = await self.transport.open_connection(self)

    def connection_ready(self, connection: _Connection) -> None:
        if connection is not self.connection:
            return
        if self.tls.insecure:
            logger.warning("quic connection to %s is NOT authenticated: insecure_skip_verify = "
                           "true accepts any server certificate", self.label)
        connection.accept()
        connection.keep_alive(self.transport.keepalive_interval)
        backlog, self._backlog, self._backlog_bytes = self._backlog, [], 0
        for packet in backlog:
            try:
                connection.send_packet(packet)
            except (MessageTooLarge, TransportError) as exc:
                self.transport.events.send_failed(self.destination, exc)

    def connection_ended(self, connection: _Connection, reason: str) -> None:
        if connection is not self.connection:
            return
        self.connection = None
        if not connection.established or connection.refused:
            self._failed(f"quic handshake with {self.label} failed: {reason}")
            return
        self._failures = 0
        text = f"quic connection to {self.label} lost: {reason}"
        self.transport.warnings.warning("connection_lost", "%s", text)
        self.transport.events.send_failed(self.destination, TransportError(text))
        if self._backlog:  # held while the connection was closing: never sent, so not a resend
            self.connecting = self.transport.spawn(self.reconnect())

    def _failed(self, text: str) -> None:
        """Count a failed attempt, back off before the next, and drop what waited for it."""
        self._failures += 1
        backoff = min(_FIRST_RETRY * 2 ** (self._failures - 1), _LAST_RETRY)
        self._not_before = asyncio.get_running_loop().time() + backoff
        self.transport.warnings.warning("handshake_failed", "%s", text)
        self.transport.events.send_failed(self.destination, TransportError(text))
        self._drop_backlog(text)

    def _drop_backlog(self, reason: str) -> None:
        if self._backlog:
            text = f"{len(self._backlog)} packets to {self.label} dropped: {reason}"
            self._backlog, self._backlog_bytes = [], 0
            self.transport.events.send_failed(self.destination, TransportError(text))

    def close(self) -> None:
        if self.connecting is not None:
            self.connecting.cancel()
        if self.connection is not None:
            self.connection.shut()
            self.connection = None
        self._drop_backlog("the transport closed")


# -- the server side ----------------------------------------------------------------


class _Listener:
    """One listening socket and the connections that clients opened to it."""

    def __init__(self, transport: QuicTransport) -> None:
        self.transport = transport
        self.server: QuicServer | None = None
        self.connections: set[_Connection] = set()

    def make_connection(self, quic: QuicConnection, stream_handler: object = None) -> _Connection:
        """Called by aioquic's server for each new client, as its ``create_protocol``
        (which also passes a ``stream_handler``: this transport reads streams itself)."""
        transport = self.transport
        if transport.client_ca is not None:
            _ask_for_client_certificate(quic)
        connection = _Connection(quic, self, transport.events, transport.max_packet_size,
                                 _Mode.STREAM)
        self.connections.add(connection)
        return connection

    def connection_ready(self, connection: _Connection) -> None:
        problem = self.transport.check_client(connection)
        if problem is not None:
            self.transport.warnings.warning(
                "client_rejected", "quic client %s rejected: %s", connection.label, problem)
            connection.fail(f"client certificate rejected: {problem}", _BAD_CERTIFICATE)
            return
        assert connection.remote is not None  # known since its first datagram
        connection.accept()
        self.transport.routes[connection.remote] = connection

    def connection_ended(self, connection: _Connection, reason: str) -> None:
        self.connections.discard(connection)
        routes = self.transport.routes
        if connection.remote is not None and routes.get(connection.remote) is connection:
            del routes[connection.remote]
        logger.debug("quic connection from %s ended: %s", connection.label, reason)

    def close(self) -> None:
        for connection in self.connections:
            connection.shut()
        self.connections.clear()
        if self.server is not None:
            self.server.close()


# -- the transport ----------------------------------------------------------------


class QuicTransport(Transport):
    """Packets over QUIC: on one stream per connection (reliable), or as datagrams (like UDP).

    Listener options (``[listen.quic]``) are keyword arguments; ``ca``,
    ``client_certificate`` and ``client_key`` here are defaults for every peer.
    ``udp_payload_size`` is the size of the UDP datagrams QUIC sends: 1200 passes
    any path (aioquic does no path MTU discovery); more is faster, but only where
    every path carries it (loopback, jumbo frames).
    Per-peer options (``[peers.NAME]``) are checked by :meth:`check_peer_options`
    and passed to :meth:`prepare`.
    """

    scheme = "quic"
    reliable = True  # true of the default stream mode; a datagram-mode peer is like UDP

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

    async def listen(self, host: str, port: int) -> HostPort:
        """Accept QUIC connections on host:port (port 0 picks one); return the address bound."""
        where = _display(host, port)
        self._check_open(where)
        configuration = self._server_configuration
        if configuration is None:
            raise ConfigError("[listen.quic] certificate and private_key are required to listen "
                              "(PEM files; `net-relay gen-cert` makes a development pair)")
        listener = _Listener(self)
        try:
            udp, server = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: QuicServer(configuration=configuration,
                                   create_protocol=listener.make_connection),
                local_addr=(host, port),
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

        Packets sent meanwhile wait in a queue of at most ``queue_limit`` bytes.
        One connection serves each destination, so preparing it again with other
        ``options`` is a ConfigError.
        """
        options = dict(options or {})
        where = f"peer quic://{_display(host, port)}"
        tls = _peer_tls(options, where)
        destination = await self._resolve(host, port)
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

    def send(self, destination: HostPort, packet: bytes) -> None:
        """Send one packet over the connection to (or from) ``destination``."""
        if len(packet) > self.max_packet_size:
            raise MessageTooLarge(len(packet), self.max_packet_size,
                                  "raise [listen.quic] max_packet_size to allow it")
        peer = self._peers.get(destination)
        if peer is not None:
            peer.send(packet)
            return
        connection = self.routes.get(destination)
        if connection is None or not connection.is_open:
            self._check_open(_display(*destination))
            raise TransportError(f"cannot send to quic {_display(*destination)}: no connection; "
                                 "call prepare() for a destination before sending to it")
        connection.send_packet(packet)

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
                lambda: _Connection(quic, peer, self.events, self.max_packet_size, peer.tls.mode),
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

    def check_client(self, connection: _Connection) -> str | None:
        """Why the client of ``connection`` is not acceptable, or None if it is."""
        if self.client_ca is None:
            return None
        presented = connection.client_certificates()
        if presented is None:
            return "it presented no certificate, and client_ca requires one"
        try:
            verify_certificate(certificate=presented[0], chain=presented[1],
                               cadata=self.client_ca)
        except (Alert, ValueError) as exc:
            return str(exc) or type(exc).__name__
        return None

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

    async def _resolve(self, host: str, port: int) -> HostPort:
        where = _display(host, port)
        self._check_open(where)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise TransportError(f"quic {where}: port must be from 1 to 65535")
        try:
            infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM, 0,
                                       socket.AI_NUMERICHOST)
        except (OSError, UnicodeError):
            infos = await _lookup(host, port)
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                return str(sockaddr[0]), int(sockaddr[1])
        raise TransportError(f"cannot resolve quic {where}: no IP address")


def _trust_the_system_store(configuration: QuicConfiguration) -> None:
    """Verify servers against the operating system's CA store, as TLS over TCP does.

    Only paths that exist are named: a missing one would make the handshake
    raise inside aioquic. With neither, aioquic falls back to certifi's bundle.
    """
    paths = ssl.get_default_verify_paths()
    if paths.cafile or paths.capath:
        configuration.load_verify_locations(cafile=paths.cafile, capath=paths.capath)


async def _lookup(host: str, port: int) -> list[tuple[Any, ...]]:
    try:
        return list(await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                 type=socket.SOCK_DGRAM))
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TransportError(f"cannot resolve quic {_display(host, port)}: {reason}") from exc


@hookimpl
def net_relay_transports() -> list[type[Transport]]:
    """The QUIC transport, for the scheme ``quic``."""
    return [QuicTransport]
