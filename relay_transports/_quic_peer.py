"""A destination the ``quic`` transport connects to: its connection and the packets waiting.

Packets sent before the handshake completes wait in a queue. At ``queue_limit``
bytes it is full (``send`` hands back a future, completed once the queue has
gone to the connection or been dropped); packets of sends that cannot wait are
taken up to ``queue_limit + max_packet_size``, then dropped and reported
unsent. If the handshake fails, what waited is dropped and reported unsent.
Nothing is ever resent on a new connection, so delivery stays at most once.
After failed handshakes, the next attempt waits for a capped backoff. A failed
attempt (nobody listening, a certificate that does not verify, no route) is
reported as :class:`~relay_core.PeerUnreachable` holding for that backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Protocol

from relay_core import (
    HostPort,
    MessageTooLarge,
    PeerUnreachable,
    RateLimitedLog,
    TransportError,
    TransportEvents,
    UnsentReason,
)

from ._addresses import display
from ._held_senders import HeldSenders
from ._quic_connection import _DATAGRAM_HINT, _Connection
from ._quic_net import logger
from ._quic_options import _Mode, _PeerTls

_FIRST_RETRY = 0.1  # seconds between the first failed handshake and the next attempt
_LAST_RETRY = 5.0  # the cap on the backoff between handshake attempts


class PeerHost(Protocol):
    """What a peer needs of the transport that holds it."""

    events: TransportEvents
    warnings: RateLimitedLog
    queue_limit: int
    max_packet_size: int
    path_datagram_limit: int
    keepalive_interval: float

    def spawn(self, coroutine: Coroutine[object, object, None]) -> asyncio.Task[None]: ...

    async def open_connection(self, peer: _Peer) -> _Connection: ...


class _Peer:
    """A destination this transport connects to: its connection and the packets waiting for it."""

    def __init__(self, transport: PeerHost, destination: HostPort, server_name: str,
                 tls: _PeerTls, options: dict[str, object]) -> None:
        self.transport = transport
        self.options = options
        self.destination = destination
        self.server_name = tls.server_name or server_name
        self.tls = tls
        self.label = "quic://" + display(*destination)
        self.connection: _Connection | None = None
        self.connecting: asyncio.Task[None] | None = None
        self._backlog: list[bytes] = []
        self._backlog_bytes = 0
        self._held = HeldSenders()
        """What senders wait on while the backlog is at ``queue_limit`` bytes."""
        self._failures = 0
        self._not_before = 0.0

    def send(self, packet: bytes) -> asyncio.Future[None] | None:
        connection = self.connection
        if connection is not None and connection.is_open:
            return connection.send_packet(packet)
        if self.tls.mode is _Mode.DATAGRAM:
            limit = self.transport.path_datagram_limit
            if len(packet) > limit:
                raise MessageTooLarge(len(packet), limit, _DATAGRAM_HINT)
        full = self._hold(packet)
        if connection is None and self.connecting is None:
            self.connecting = self.transport.spawn(self.reconnect())
        return full

    def holding(self) -> bool:
        """Whether packets wait here, or on the connection for acknowledgement."""
        connection = self.connection
        return bool(self._backlog) or (
            connection is not None and connection.is_open and connection.pending() > 0)

    def _hold(self, packet: bytes) -> asyncio.Future[None] | None:
        transport = self.transport
        limit = transport.queue_limit
        if self._backlog and self._backlog_bytes + len(packet) > limit + transport.max_packet_size:
            transport.events.packets_unsent(self.destination, [packet], "link_full")
        else:
            self._backlog.append(packet)
            self._backlog_bytes += len(packet)
        if self._backlog_bytes < limit or self.tls.mode is _Mode.DATAGRAM:
            return None
        return self._held.hold()

    async def reconnect(self) -> None:
        try:
            delay = self._not_before - asyncio.get_running_loop().time()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.connect()
        except TransportError as exc:
            self._failed(exc.strerror or str(exc), exc.errno)
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
        # Senders go on; the connection's own future holds them back if it is full now.
        self._held.release()

    def connection_ended(self, connection: _Connection, reason: str) -> None:
        if connection is not self.connection:
            return
        self.connection = None
        if not connection.established or connection.refused:
            self._failed(f"quic handshake failed: {reason}")
            return
        self._failures = 0
        text = f"quic connection to {self.label} lost: {reason}"
        self.transport.warnings.warning("connection_lost", "%s", text)
        self.transport.events.send_failed(self.destination, TransportError(text))
        if self._backlog:  # held while the connection was closing: never sent, so not a resend
            self.connecting = self.transport.spawn(self.reconnect())

    def connection_over_budget(self, connection: _Connection) -> None:
        transport = self.transport
        transport.events.connection_dropped(self.destination, "connections_over_budget")
        transport.warnings.warning(
            "connections_over_budget", "%s closed: its unfinished packet would take the unfinished "
            "packets of all connections past [listen.quic] max_buffered_input", self.label)

    def _failed(self, reason: str, code: int | None = None) -> None:
        """Count a failed attempt, back off before the next, and drop what waited for it."""
        self._failures += 1
        backoff = min(_FIRST_RETRY * 2 ** (self._failures - 1), _LAST_RETRY)
        self._not_before = asyncio.get_running_loop().time() + backoff
        error = PeerUnreachable(self.label, reason, errno=code, retry_after=backoff)
        self.transport.warnings.warning("handshake_failed", "%s", error)
        self._drop_backlog("peer_unreachable")
        self.transport.events.send_failed(self.destination, error)

    def _drop_backlog(self, reason: UnsentReason) -> None:
        backlog, self._backlog, self._backlog_bytes = self._backlog, [], 0
        if backlog:
            self.transport.events.packets_unsent(self.destination, backlog, reason)
        self._held.release()

    @property
    def waiting(self) -> int:
        """Packets held for the handshake."""
        return len(self._backlog)

    def close(self) -> None:
        if self.connecting is not None:
            self.connecting.cancel()
        if self.connection is not None:
            self.connection.shut()
            self.connection = None
        self._drop_backlog("closed_unsent")
