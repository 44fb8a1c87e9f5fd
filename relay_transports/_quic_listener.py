"""The server side of the ``quic`` transport: one listening socket and its clients' connections.

With ``client_ca``, a listener asks each client for a certificate and checks it
itself (aioquic does neither), before a byte from the client is delivered.

A listener holds at most ``max_connections`` connections, of which at most
``max_handshakes`` have not finished their handshake. When an Initial would
open one more than either allows, the oldest unfinished handshake is dropped to
make room (counted ``handshakes_dropped``): an abandoned handshake is far likelier
the oldest than a real client's, which takes a round trip or two, so a burst of
abandoned ones shuts nobody out once it ends. Only when every connection has
finished its handshake is the new one refused (``connections_refused``), before
aioquic builds any state for it. With ``retry``, only an Initial carrying a
Retry token (proof that its source address is real) may open a connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicErrorCode
from aioquic.tls import Alert, AlertDescription, verify_certificate

from relay_core import ConnectionDropReason, HostPort, RateLimitedLog, TransportEvents

from ._addresses import display
from ._budget import InputBudget
from ._quic_connection import _Connection
from ._quic_internals import (
    _AdmittingServer,
    _ask_for_client_certificate,
    _collect_ended_connections,
)
from ._quic_net import logger
from ._quic_options import _Mode

_BAD_CERTIFICATE = QuicErrorCode.CRYPTO_ERROR + AlertDescription.bad_certificate


@dataclass(frozen=True, slots=True)
class ListenerLoad:
    """What a quic transport's listeners hold, summed over them."""

    connections: int = 0
    """Connections open or closing, handshakes included."""
    handshakes: int = 0
    """Connections whose handshake has not finished (half-open)."""
    connection_ids: int = 0
    """Entries in aioquic's table from connection ID to connection."""

    def __add__(self, other: ListenerLoad) -> ListenerLoad:
        return ListenerLoad(self.connections + other.connections,
                            self.handshakes + other.handshakes,
                            self.connection_ids + other.connection_ids)


class ListenerHost(Protocol):
    """What a listener needs of the transport that holds it."""

    events: TransportEvents
    warnings: RateLimitedLog
    queue_limit: int
    max_packet_size: int
    max_connections: int
    max_handshakes: int
    input_budget: InputBudget
    """Shared by every connection of the transport, the clients' included."""
    client_ca: bytes | None
    routes: dict[HostPort, _Connection]
    """The connections of every listener, by the client's address."""


class _Listener:
    """One listening socket and the connections that clients opened to it."""

    def __init__(self, transport: ListenerHost) -> None:
        self.transport = transport
        self.server: _AdmittingServer | None = None
        self.connections: set[_Connection] = set()
        self.handshakes: dict[_Connection, None] = {}
        """The connections among ``connections`` whose handshake has not finished, oldest
        first."""
        self._ended_uncollected = 0
        """Connections ended since the last :func:`_collect_ended_connections`."""

    @property
    def load(self) -> ListenerLoad:
        ids = 0 if self.server is None else self.server.connection_ids
        return ListenerLoad(len(self.connections), len(self.handshakes), ids)

    def admit(self, source: HostPort) -> bool:
        """Whether a client at ``source`` may open one more connection, once the oldest
        unfinished handshake has made room if a cap is reached; counts what it drops."""
        transport = self.transport
        if self.handshakes and (len(self.handshakes) >= transport.max_handshakes
                                or len(self.connections) >= transport.max_connections):
            limit = ("max_handshakes" if len(self.handshakes) >= transport.max_handshakes
                     else "max_connections")
            self._drop(next(iter(self.handshakes)), "handshakes_dropped", limit)
        if len(self.connections) < transport.max_connections:
            return True
        self._count(source, "connections_refused", "max_connections")
        return False

    def _drop(self, connection: _Connection, reason: ConnectionDropReason, limit: str) -> None:
        connection.abandon(f"the server dropped this handshake: its {limit} is reached")
        if self.server is not None:
            self.server.forget(connection)
        if connection.remote is not None:
            self._count(connection.remote, reason, limit)

    def _count(self, source: HostPort, reason: ConnectionDropReason, limit: str) -> None:
        transport = self.transport
        transport.events.connection_dropped(source, reason)
        transport.warnings.warning(reason, "quic listener: [listen.quic] %s reached (%s from "
                                   "%s)", limit, reason.replace("_", " "), display(*source))

    def make_connection(self, quic: QuicConnection) -> _Connection:
        """Called by the server for each new client, once ``admit`` let it in."""
        transport = self.transport
        if transport.client_ca is not None:
            _ask_for_client_certificate(quic)
        connection = _Connection(quic, self, transport.events, transport.max_packet_size,
                                 _Mode.STREAM, transport.queue_limit, transport.input_budget)
        self.connections.add(connection)
        self.handshakes[connection] = None
        return connection

    def connection_ready(self, connection: _Connection) -> None:
        self.handshakes.pop(connection, None)
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
        self.handshakes.pop(connection, None)
        self._ended_uncollected += 1
        if self._ended_uncollected >= self.transport.max_handshakes:
            self._ended_uncollected = 0
            _collect_ended_connections()
        routes = self.transport.routes
        if connection.remote is not None and routes.get(connection.remote) is connection:
            del routes[connection.remote]
        logger.debug("quic connection from %s ended: %s", connection.label, reason)

    def connection_over_budget(self, connection: _Connection) -> None:
        if connection.remote is not None:
            self._count(connection.remote, "connections_over_budget", "max_buffered_input")

    def close(self) -> None:
        for connection in self.connections:
            connection.shut()
        self.connections.clear()
        self.handshakes.clear()
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
