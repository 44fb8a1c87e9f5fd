"""What the ``quic`` transport needs from inside aioquic, and the packet sizes it implies.

aioquic 1.x exposes none of the accessors below publicly. Each private
access lives here, in one small function, and tests/test_quic_transport.py
exercises each (mutual TLS, and datagrams against an advertised limit). The
datagram limits are checked before aioquic sees a datagram, because aioquic
queues a DATAGRAM frame that fits no packet and then sends no other.
"""

from __future__ import annotations

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet_builder import PACKET_NUMBER_SEND_SIZE
from cryptography import x509

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
