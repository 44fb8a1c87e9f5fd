"""One ``quic`` connection: drives aioquic and carries packets on one stream or in datagrams.

A connection delivers and sends nothing until its owner (a client peer or a
listener) accepts the handshake, and nothing once it is closing. It never
raises out of an asyncio or aioquic callback: its end, whatever the cause, is
reported once to its owner with a reason in words.

What a connection holds of unfinished packets (its deframer's part of a packet,
and what aioquic holds of its streams past a gap) is charged to the transport's
:class:`~relay_transports._budget.InputBudget` after every datagram; the
connection whose charge would take the total past the budget is closed, its
bytes let go, and its owner told (``connection_over_budget``).
"""

from __future__ import annotations

import asyncio
import errno
from collections import deque
from typing import Protocol, cast

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.connection import NetworkAddress, QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    DatagramFrameReceived,
    HandshakeCompleted,
    QuicEvent,
    StreamDataReceived,
)
from aioquic.quic.packet import QuicErrorCode
from cryptography import x509

from relay_core import (
    HostPort,
    LengthPrefixFraming,
    MalformedFrame,
    MessageTooLarge,
    TransportError,
    TransportEvents,
    UnsentReason,
)

from ._addresses import display
from ._budget import InputBudget
from ._held_senders import HeldSenders
from ._quic_internals import (
    _acknowledge_now,
    _acknowledged_offset,
    _client_certificates,
    _datagram_limit,
    _held_out_of_order,
)
from ._quic_options import _Mode

_PATH_ERRORS = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
_DATAGRAM_HINT = 'use mode = "stream" for this peer to send larger packets'
_STREAM_ERROR = QuicErrorCode.PROTOCOL_VIOLATION
_FRAMING = LengthPrefixFraming()
"""How packets travel on a connection's stream: each after its length (docs/protocol.md)."""


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


class _Owner(Protocol):
    """Who a connection reports its handshake and its end to."""

    def connection_ready(self, connection: _Connection) -> None: ...

    def connection_ended(self, connection: _Connection, reason: str) -> None: ...

    def connection_over_budget(self, connection: _Connection) -> None:
        """Count and log ``connection``, closed for the transport's ``max_buffered_input``."""


class _Connection(QuicConnectionProtocol):
    """Drives one QUIC connection and carries packets on its stream or in its datagrams.

    The owner calls :meth:`accept` once it accepts the handshake; before that,
    and once the connection is closing, nothing is delivered or sent.
    """

    def __init__(self, quic: QuicConnection, owner: _Owner, events: TransportEvents,
                 max_packet_size: int, mode: _Mode, queue_limit: int,
                 budget: InputBudget) -> None:
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
        self._deframer = _FRAMING.splitter(max_packet_size)
        self._budget = budget
        self._charged = 0
        """Bytes of unfinished packets this connection holds against ``budget``."""
        self._udp: asyncio.DatagramTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._transmit_handle: asyncio.Handle | None = None
        self._keepalive: asyncio.TimerHandle | None = None
        self._queue_limit = queue_limit
        self._largest = max_packet_size
        self._written = 0
        """Bytes written to our stream so far: the offset its next byte takes."""
        self._unacknowledged: deque[tuple[int, bytes]] = deque()
        """(stream offset where it ends, packet) for every packet the peer has not
        acknowledged whole, oldest first: what is reported unsent if the connection ends."""
        self._acknowledged = 0
        self._held = HeldSenders()
        """What senders wait on while unacknowledged bytes reach ``queue_limit``."""

    @property
    def is_client(self) -> bool:
        return self._quic.configuration.is_client

    def accept(self) -> None:
        self.is_open = self.established = True

    def client_certificates(self) -> tuple[x509.Certificate, list[x509.Certificate]] | None:
        return _client_certificates(self._quic)

    # -- outbound

    def send_packet(self, packet: bytes) -> asyncio.Future[None] | None:
        """Hand one packet to aioquic and transmit within this turn of the loop; on a
        stream, a future while what the peer has not acknowledged reaches ``queue_limit``."""
        full = None
        if self.mode is _Mode.DATAGRAM:
            if len(packet) > self.datagram_limit:
                raise MessageTooLarge(len(packet), self.datagram_limit, _DATAGRAM_HINT)
            self._quic.send_datagram_frame(packet)
        else:
            full = self._write_stream(packet)
        if self._transmit_handle is None:
            self._transmit_handle = self._loop.call_soon(self._transmit_now)
        return full

    def _write_stream(self, packet: bytes) -> asyncio.Future[None] | None:
        if not packet:
            raise TransportError("a quic stream cannot carry an empty packet")
        if self._stream_id is None:
            self._stream_id = self._quic.get_next_available_stream_id()
        framed = _FRAMING.frame(packet)
        unacknowledged = self.pending()
        if unacknowledged and unacknowledged + len(framed) > self._queue_limit + self._largest:
            # Only sends that cannot wait (replies) get here: the others wait for room.
            if self.remote is not None:
                self.events.packets_unsent(self.remote, [packet], "link_full")
            return self._held.future
        try:
            self._quic.send_stream_data(self._stream_id, framed)
        except (ValueError, RuntimeError) as exc:  # the peer stopped or reset our stream
            self.fail(f"the stream cannot be written: {exc}")
            raise TransportError(f"quic send to {self.label} failed: {exc}") from None
        self._written += len(framed)
        self._unacknowledged.append((self._written, packet))
        if self.pending() < self._queue_limit:
            return None
        return self._held.hold()

    def pending(self) -> int:
        """Bytes written to our stream that the peer has not acknowledged yet."""
        return self._written - self._acknowledged

    def _note_acknowledgements(self) -> None:
        """Forget packets the peer acknowledged whole; wake senders once there is room."""
        if self._stream_id is None or not self._unacknowledged:
            return
        self._acknowledged = _acknowledged_offset(self._quic, self._stream_id)
        unacknowledged = self._unacknowledged
        while unacknowledged and unacknowledged[0][0] <= self._acknowledged:
            unacknowledged.popleft()
        if self.pending() < self._queue_limit:
            self._held.release()

    def report_unacknowledged(self, reason: UnsentReason) -> None:
        """Report the packets the peer has not acknowledged whole as unsent (some of the
        last may have arrived, their acknowledgement not), and wake held-back senders."""
        if self._stream_id is not None and not self._ended:
            self._note_acknowledgements()
        packets = [packet for _, packet in self._unacknowledged]
        self._unacknowledged.clear()
        self._acknowledged = self._written
        if packets and self.remote is not None:
            self.events.packets_unsent(self.remote, packets, reason)
        self._held.release()

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

    def abandon(self, reason: str) -> None:
        """End a connection the owner will forget at once: tell the peer, deliver nothing
        more, report the end now rather than after the closing period."""
        self.is_open = False
        self._quic.close(error_code=QuicErrorCode.CONNECTION_REFUSED, reason_phrase=reason)
        self.transmit()
        self._end(reason)

    def shut(self) -> None:
        """Close, telling the peer, and release what the connection holds; report what
        the peer had not acknowledged as unsent."""
        self.report_unacknowledged("closed_unsent")
        if self._udp is not None and not self._udp.is_closing():
            _acknowledge_now(self._quic)
            self.transmit()
            self.close()
        self._release()

    def _end(self, reason: str) -> None:
        self._release()
        self.report_unacknowledged("connection_lost")
        self.owner.connection_ended(self, reason)

    def _release(self) -> None:
        self._ended = True
        self.is_open = False
        self._let_go()
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self.is_client and self._udp is not None:
            self._udp.close()  # a client connection has a socket of its own

    def _let_go(self) -> None:
        """Give back this connection's charge and its unfinished packet: nothing more is read."""
        self._budget.give_back(self._charged)
        self._charged = 0
        self._deframer.discard()

    def _charge(self) -> None:
        """Charge the budget with what this connection holds now; past it, close the
        connection (the packets it finished were delivered, whole)."""
        holding = self._deframer.buffered + _held_out_of_order(self._quic)
        over = self._budget.charge(self._charged, holding)
        self._charged = holding
        if over:
            self._let_go()
            self.fail(f"the {'client' if self.is_client else 'server'} holds all the unfinished "
                      "packets it can (max_buffered_input)", QuicErrorCode.INTERNAL_ERROR)
            self.owner.connection_over_budget(self)

    @property
    def label(self) -> str:
        return "quic://" + display(*self.remote) if self.remote else "quic (unknown peer)"

    # -- asyncio and aioquic callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._udp = cast(asyncio.DatagramTransport, transport)  # asyncio's is not a subclass

    def datagram_received(self, data: bytes | str, addr: NetworkAddress) -> None:
        if self.remote is None:
            self.remote = (str(addr[0]), int(addr[1]))
        if not self._ended:
            super().datagram_received(data, addr)
            self._note_acknowledgements()
            if self.is_open:
                self._charge()

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
        packets = self._deframe(event.data)
        if packets is None:
            return
        if not self.is_client:
            self.mode = _Mode.STREAM  # replies go the way requests came
        for packet in packets:
            self.events.packet_received(packet, self.remote)
        if self._deframer.failed:
            self._deframe(b"")  # reports the fault found after those packets

    def _deframe(self, data: bytes) -> list[bytes] | None:
        """The packets ``data`` completes; None, and the connection failed, at a fault."""
        try:
            return self._deframer.feed(data)
        except MalformedFrame as exc:
            self.fail(str(exc))
            if self.remote is not None:
                self.events.input_malformed(self.remote, exc)
            return None

    def _datagram(self, packet: bytes) -> None:
        if self.is_open and self.remote is not None:
            if not self.is_client:
                self.mode = _Mode.DATAGRAM
            self.events.packet_received(packet, self.remote)
