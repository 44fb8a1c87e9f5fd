"""What the ``quic`` transport needs from inside aioquic, and the packet sizes it implies.

aioquic 1.x exposes none of the accessors below publicly. Each private
access lives here, in one small function, and tests/transports/test_quic_transport.py
exercises each (mutual TLS, and datagrams against an advertised limit). The
datagram limits are checked before aioquic sees a datagram, because aioquic
queues a DATAGRAM frame that fits no packet and then sends no other.

:class:`_AdmittingServer` is aioquic's ``QuicServer`` with two changes, both
where a flood of handshakes hurts (tests/adversary/test_attack_quic.py):

- an Initial that would open a connection is first put to the listener, which
  may refuse it (its caps); a refused client whose address a Retry token has
  proven is told so in a CONNECTION_CLOSE, anyone else is not answered; and
  the listener may drop a connection at once (:meth:`_AdmittingServer.forget`);
- each connection's IDs are indexed by connection, so its end removes just
  those. aioquic's own ``_connection_terminated`` scans every ID of every
  connection at each end: thousands of abandoned handshakes timing out
  together took that quadratic scan to half a minute of CPU.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from aioquic import tls
from aioquic._buffer import Buffer
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.connection import TRANSPORT_CLOSE_FRAME_CAPACITY, NetworkAddress, QuicConnection
from aioquic.quic.crypto import CryptoPair
from aioquic.quic.packet import (
    QuicErrorCode,
    QuicFrameType,
    QuicHeader,
    QuicPacketType,
    pull_quic_header,
)
from aioquic.quic.packet_builder import PACKET_NUMBER_SEND_SIZE, QuicPacketBuilder
from cryptography import x509

from relay_core import HostPort

_MAX_CONNECTION_ID = 20  # RFC 9000 section 17.2: a peer's connection IDs are at most this long
_AEAD_TAG_SIZE = 16  # every TLS 1.3 cipher suite QUIC uses
_SHORT_HEADER_MAX = 1 + _MAX_CONNECTION_ID + PACKET_NUMBER_SEND_SIZE


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


def _acknowledge_now(connection: QuicConnection) -> None:
    """Make an acknowledgement aioquic holds back (its ack delay) due at once.

    A node that closes right after the peer's last packets would otherwise close
    without acknowledging them, and the peer would count what it delivered as lost.
    """
    space = getattr(connection, "_spaces", {}).get(tls.Epoch.ONE_RTT)
    if space is not None and space.ack_at is not None:
        space.ack_at = 0.0


def _advertised_datagram_frame_size(connection: QuicConnection) -> int | None:
    """The peer's max_datagram_frame_size transport parameter; None if it takes no datagrams."""
    return connection._remote_max_datagram_frame_size


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


def _acknowledged_offset(connection: QuicConnection, stream_id: int) -> int:
    """How many bytes at the start of our side of a stream the peer has acknowledged.

    aioquic keeps a stream's sent data until it is acknowledged, in order, from
    this offset on; it tells no one when that moves, so the transport asks it
    after every datagram received (where acknowledgements arrive).
    """
    stream = connection._streams.get(stream_id)
    return 0 if stream is None else stream.sender._buffer_start


def _held_out_of_order(connection: QuicConnection) -> int:
    """Bytes aioquic holds of its streams' data that came ahead of a gap, waiting for it.

    aioquic hands a stream's data on as soon as it is in order, so only what
    follows a missing range stays inside it; its flow windows grow with what
    arrives, not with what is read, so they do not bound this.
    """
    return sum(len(stream.receiver._buffer) for stream in connection._streams.values())


Admit = Callable[[HostPort], bool]
"""Asked before an Initial opens a connection from the address given: True lets it open
one; False refuses it (the callee counts the refusal)."""
MakeConnection = Callable[[QuicConnection], QuicConnectionProtocol]

_REFUSAL_REASON = b"the server is at its connection limit; try again later"


class _AdmittingServer(QuicServer):
    """aioquic's server, asking ``admit`` before it opens a connection, and ending one
    without a scan of every connection (see the module's docstring)."""

    def __init__(self, *, configuration: QuicConfiguration, make_connection: MakeConnection,
                 admit: Admit, retry: bool) -> None:
        super().__init__(configuration=configuration, create_protocol=self._open, retry=retry)
        self._make_connection = make_connection
        self._admit = admit
        self._ids: dict[QuicConnectionProtocol, set[bytes]] = {}
        """Every connection ID routed to each connection: what its end removes."""
        self._opening_id = b""
        """The destination ID of the Initial that is opening a connection right now."""

    @property
    def connection_ids(self) -> int:
        """Connection IDs routed to a connection: a few per connection, none left over."""
        return len(self._protocols)

    def datagram_received(self, data: bytes | str, addr: NetworkAddress) -> None:
        if isinstance(data, bytes):
            header = self._opening_header(data)
            if header is not None:
                source = (str(addr[0]), int(addr[1]))
                if not self._admit(source):
                    if self._retry is not None:  # only then is the address proven
                        self._refuse(header, addr)
                    return
                self._opening_id = header.destination_cid
        super().datagram_received(data, addr)

    def _opening_header(self, data: bytes) -> QuicHeader | None:
        """The header of ``data`` if aioquic would open a connection for it, else None.

        With Retry, only an Initial whose token proves its source address opens one;
        Initials without a token get a Retry (no state), bad tokens a close (no state).
        """
        if len(data) < SMALLEST_MAX_DATAGRAM_SIZE:
            return None
        configuration = self._configuration
        try:
            header = pull_quic_header(Buffer(data=data),
                                      host_cid_length=configuration.connection_id_length)
        except ValueError:
            return None
        if (header.packet_type != QuicPacketType.INITIAL
                or header.version not in configuration.supported_versions
                or header.destination_cid in self._protocols):
            return None
        if self._retry is not None and not header.token:
            return None
        return header

    def _refuse(self, header: QuicHeader, addr: NetworkAddress) -> None:
        """Tell a client whose address is proven that it is refused, so it need not wait
        for its handshake to time out; a token that does not verify gets nothing."""
        assert self._retry is not None and self._transport is not None
        try:
            self._retry.validate_token(address=addr, destination_cid=header.destination_cid,
                                       token=header.token, now=self._loop.time())
        except ValueError:
            return
        assert header.version is not None  # a long header's, checked as supported
        self._transport.sendto(
            _refusal(header.version, header.destination_cid, header.source_cid), addr)

    def _open(self, connection: QuicConnection, stream_handler: object = None
              ) -> QuicConnectionProtocol:
        protocol = self._make_connection(connection)
        self._ids[protocol] = {self._opening_id, connection.host_cid}
        return protocol

    def _connection_id_issued(self, cid: bytes, protocol: QuicConnectionProtocol) -> None:
        super()._connection_id_issued(cid, protocol)
        self._ids.setdefault(protocol, set()).add(cid)

    def _connection_id_retired(self, cid: bytes, protocol: QuicConnectionProtocol) -> None:
        super()._connection_id_retired(cid, protocol)
        self._ids.get(protocol, set()).discard(cid)

    def _connection_terminated(self, protocol: QuicConnectionProtocol) -> None:
        routes = self._protocols
        for cid in self._ids.pop(protocol, ()):
            if routes.get(cid) is protocol:
                del routes[cid]
        # The handlers aioquic set are partials holding the connection: a reference
        # cycle that would keep its ~85 KB until the collector's next full pass.
        protocol._connection_id_issued_handler = _ignore
        protocol._connection_id_retired_handler = _ignore
        protocol._connection_terminated_handler = _nothing

    def forget(self, protocol: QuicConnectionProtocol) -> None:
        """Drop a connection's state now, not after its closing period: its IDs, its timer."""
        self._connection_terminated(protocol)
        if protocol._timer is not None:
            protocol._timer.cancel()
            protocol._timer = None

    def close(self) -> None:
        super().close()
        self._ids.clear()


def _collect_ended_connections() -> None:
    """Free the connections that ended since the last call, now.

    An aioquic ``QuicConnection`` is a web of reference cycles (its frame
    handlers and recovery callbacks are its own bound methods), so an ended one,
    some 85 KB with its TLS state, waits for the collector's full pass. A node
    that stopped allocating after a flood of abandoned handshakes runs none, and
    kept their memory; the listener calls this after every ``max_handshakes``
    ended connections, so what waits for it stays under one cap's worth.
    """
    gc.collect()


def _ignore(cid: bytes) -> None:
    pass


def _nothing() -> None:
    pass


def _refusal(version: int, chosen_id: bytes, client_id: bytes) -> bytes:
    """A server Initial packet that closes the attempt with CONNECTION_REFUSED.

    Its keys come from ``chosen_id``, the destination ID the client put on the
    Initial refused (RFC 9001 section 5.2); it goes to the client's own ID.
    """
    crypto = CryptoPair()
    crypto.setup_initial(cid=chosen_id, is_client=False, version=version)
    builder = QuicPacketBuilder(host_cid=chosen_id, peer_cid=client_id, version=version,
                                is_client=False, max_datagram_size=SMALLEST_MAX_DATAGRAM_SIZE)
    builder.start_packet(QuicPacketType.INITIAL, crypto)
    frame = builder.start_frame(QuicFrameType.TRANSPORT_CLOSE,
                                capacity=TRANSPORT_CLOSE_FRAME_CAPACITY + len(_REFUSAL_REASON))
    frame.push_uint_var(QuicErrorCode.CONNECTION_REFUSED)
    frame.push_uint_var(0)  # no frame type caused it
    frame.push_uint_var(len(_REFUSAL_REASON))
    frame.push_bytes(_REFUSAL_REASON)
    datagrams, _ = builder.flush()
    return datagrams[0]
