"""The server side of the ``quic`` transport: one listening socket and its clients' connections.

With ``client_ca``, a listener asks each client for a certificate and checks it
itself (aioquic does neither), before a byte from the client is delivered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aioquic.asyncio.server import QuicServer
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode
from aioquic.tls import Alert, AlertDescription, verify_certificate

from ._quic_connection import _Connection
from ._quic_internals import _ask_for_client_certificate
from ._quic_net import logger
from ._quic_options import _Mode

if TYPE_CHECKING:
    from ._quic import QuicTransport

_BAD_CERTIFICATE = QuicErrorCode.CRYPTO_ERROR + AlertDescription.bad_certificate


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
                                 _Mode.STREAM, transport.queue_limit)
        self.connections.add(connection)
        return connection

    def connection_ready(self, connection: _Connection) -> None:
        problem = self._check_client(connection)
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

    def _check_client(self, connection: _Connection) -> str | None:
        """Why the client of ``connection`` is not acceptable, or None if it is."""
        if self.transport.client_ca is None:
            return None
        presented = connection.client_certificates()
        if presented is None:
            return "it presented no certificate, and client_ca requires one"
        try:
            verify_certificate(certificate=presented[0], chain=presented[1],
                               cadata=self.transport.client_ca)
        except (Alert, ValueError) as exc:
            return str(exc) or type(exc).__name__
        return None
