"""The node's protocol endpoint, without I/O: packets in, events out.

One endpoint per node, not per peer link, because what it guards is the
node's: its incarnation and packet sequence, one duplicate window over every
sender (bounded by ``max_senders``, however many links there are), the
handshake answers' budget over every source, and the decompression rate over
all of them. Per-link state (a link's sealer, its peer's incarnation) stays with
the link and is handed in when needed.

Outbound, the endpoint numbers and seals what the driver has framed and coalesced
(:meth:`Endpoint.packet`, :meth:`Endpoint.sealed_packet`, :meth:`Endpoint.hello`).

Inbound, :meth:`Endpoint.receive` takes a packet and the :class:`Arrival` that
says where it came from, and hands the arrival back holding what the node must
act on, one event per frame (see :mod:`relay_core.protocol.events`), taken with
:meth:`PacketEvents.next` (the driver's arrival is one), after these checks, in order:

1. a Heph datagram on a listener that takes them is decoded and deduplicated by
   its uuid, per source (docs/heph.md), and becomes one event per actor its
   listener's :class:`~relay_core.protocol.heph_route.HephRoute` sends it to;
2. a sealed packet is verified and opened before anything in it is read; a
   hello, or a packet sealed for an incarnation of this node that is gone, is
   answered (an :class:`AnswerToSend`, within the answer budget), an answer to
   this node's own hello becomes an :class:`AnswerReceived`; a plain packet on a
   scheme that takes only sealed ones is refused;
3. a packet carrying this node's own incarnation (sent back at it) is dropped;
4. the duplicate window drops a packet seen before or too old; a plain packet
   moves only a window keyed by its source too, since anyone can write one with
   a sender's incarnation;
5. each frame becomes an event; a message is decoded here (within the byte
   budgets of :mod:`relay_core.protocol.decoding`), a request or reply only when
   the driver asks (:meth:`Endpoint.decode`), since a retried request or a reply
   nobody waits for is never decoded.

What is dropped is counted in the arrival's counters and logged, rate-limited;
nothing a peer sends raises out of the endpoint. A driver that cannot take an
event now (a full mailbox on a reliable transport) keeps the packet's arrival:
the rest of the packet waits, in order, with its budgets, until the driver
goes on.

Time comes from the ``clock`` the endpoint is made with, read only for the
handshake answers' budget and when the decompression credit runs out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ..errors import ChecksumMismatch, MalformedFrame, Unauthenticated
from ..interfaces import endpoint_url
from ..observe.ratelog import RateLimitedLog
from .decoding import FAILED, PayloadDecoder
from .events import (
    AnswerReceived,
    AnswerToSend,
    Arrival,
    CancelReceived,
    Event,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    SealedPacketAccepted,
)
from .handshake import AnswerBudget
from .heph import UuidWindow, decode_datagram, is_heph_json
from .heph_route import HephRoute
from .seal import (
    ANSWER,
    HANDSHAKE_PACKET_SIZE,
    HELLO,
    SEALED,
    Sealer,
    answer_body,
    answered_sequence,
    hello_body,
    messages_in_packet,
    sealed_header,
    sealed_key_id,
)
from .window import DuplicateFilter, Verdict
from .wire import NO_FRAME, Frame, FrameKind, PacketWriter, is_sealed
from .wire_read import decode_frames_compact, decode_packet_compact, with_payload

__all__ = ["RESEND_FACTOR", "Endpoint", "PacketEvents"]

_MESSAGE = FrameKind.MESSAGE
_REQUEST = FrameKind.REQUEST
_CANCEL = FrameKind.CANCEL

RESEND_FACTOR = 3
"""To a plain datagram, a cached reply is sent again only while it is at most this many
times the bytes of the packet that asked for it again (QUIC's bound for an unvalidated
address)."""


class Endpoint:
    def __init__(self, incarnation: int, decoder: PayloadDecoder, *,
                 duplicate_window: int, max_senders: int, max_message_size: int,
                 opener: Sealer | None, reply_sealer: Callable[[int], Sealer],
                 sealed_schemes: frozenset[str], heph_routes: Mapping[str, HephRoute],
                 clock: Callable[[], float], log: RateLimitedLog) -> None:
        self.incarnation = incarnation
        """This node's incarnation: random, never 0, new at each start."""
        self.sequence = 0
        """The sequence number of the packet this node sent last (every packet takes one)."""
        self._packets = PacketWriter(incarnation)
        self._decoder = decoder
        self._duplicates = DuplicateFilter(duplicate_window, max_senders)
        self._max_message_size = max_message_size
        self._opener = opener
        self._reply_sealer = reply_sealer
        self._sealed_schemes = sealed_schemes
        self._heph_routes = dict(heph_routes)
        self._heph_window = UuidWindow()
        self._answer_budget = AnswerBudget()
        self._clock = clock
        self._log = log

    @property
    def senders(self) -> int:
        """How many senders the duplicate window tracks now."""
        return self._duplicates.senders

    def next_sequence(self) -> int:
        """The sequence number for the next packet this node sends."""
        self.sequence += 1
        return self.sequence

    # -- outbound ------------------------------------------------------------

    def packet(self, frames: Sequence[bytes]) -> bytes:
        """A plain packet of ``frames`` (each from ``encode_frame``), with the next sequence."""
        self.sequence += 1
        return self._packets.packet(self.sequence, frames)

    def lone_packet(self, frame: bytes) -> bytes:
        """:meth:`packet` of one frame (a request, a reply): no sequence of frames to join."""
        self.sequence += 1
        return self._packets.lone(self.sequence, frame)

    def sealed_packet(self, frames: Sequence[bytes], sealer: Sealer, receiver: int) -> bytes:
        """A packet of ``frames`` sealed by ``sealer`` for the peer's incarnation ``receiver``."""
        self.sequence += 1
        return sealer.seal(self.incarnation, receiver, self.sequence, b"".join(frames))

    def hello(self, sealer: Sealer) -> tuple[int, bytes]:
        """A sealed hello asking a peer for its incarnation, and its sequence number (which
        the answer names)."""
        sequence = self.next_sequence()
        return sequence, sealer.seal(self.incarnation, 0, sequence, hello_body(), SEALED | HELLO)

    # -- inbound -------------------------------------------------------------

    def decode(self, frame: Frame, arrival: Arrival) -> object:
        """A request's or reply's payload as an object, or :data:`FAILED` (counted, logged)."""
        return self._decoder.decode(frame, frame.payload, arrival)

    def receive(self, data: bytes, arrival: PacketEvents) -> PacketEvents | None:
        """``arrival``, filled in for packet ``data``, which came as it says: its events
        come from :meth:`PacketEvents.next`, in frame order. None for a packet that has none
        (dropped and counted, or a hello not answered)."""
        scheme = arrival.scheme
        counters = arrival.counters
        if self._heph_routes:
            heph_route = self._heph_routes.get(scheme)
            if heph_route is not None and is_heph_json(data):
                return self._receive_heph(data, heph_route, arrival)
        try:
            if is_sealed(data):
                opened = self._open(data, arrival)
                if opened is None:
                    return None
                if not isinstance(opened, tuple):
                    return arrival.load((), self._decoder, opened)
                incarnation, sequence, frames = opened
                window = incarnation
            elif scheme in self._sealed_schemes:
                raise Unauthenticated(f"{scheme} packets must be sealed here; this one is not")
            else:
                incarnation, sequence, frames = decode_packet_compact(data)
                # Anyone can write a plain packet with a sender's incarnation: keyed by
                # where it came from too, such a packet moves only a window of its own.
                window = incarnation ^ hash(arrival.source)
        except MalformedFrame as exc:
            self.count_bad_packet(exc, arrival)
            return None
        if incarnation == self.incarnation:  # this node's own packet, sent back at it
            self._count_reflected(arrival)
            return None
        verdict = self._duplicates.check(window, sequence)
        if verdict is not Verdict.ACCEPTED:
            if verdict is Verdict.DUPLICATE:
                counters.duplicates += 1
            else:
                counters.too_old += 1
            return None
        arrival.incarnation = incarnation
        counters.frames_received += len(frames)
        arrival.resend_left = RESEND_FACTOR * len(data)
        arrival.expansion_left = self._decoder.packet_expansion
        return arrival.load(frames, self._decoder,
                            None if arrival.key_id is None else SealedPacketAccepted(incarnation))

    def _receive_heph(self, data: bytes, route: HephRoute,
                      arrival: PacketEvents) -> PacketEvents | None:
        """A Heph JSON datagram: checked, deduplicated by uuid, a message for each actor
        ``route`` sends it to."""
        counters = arrival.counters
        try:
            heph = decode_datagram(data, self._max_message_size)
        except MalformedFrame as exc:
            self.count_bad_packet(exc, arrival)
            return None
        if not self._heph_window.first_time(heph.uuid, (arrival.scheme, arrival.source)):
            counters.heph_duplicates += 1
            return None
        counters.frames_received += 1
        counters.messages_received += 1
        return arrival.load_events(self._decoder, route.events(heph.message, len(data)))

    # -- sealed packets ------------------------------------------------------

    def _open(self, data: bytes, arrival: PacketEvents,
              ) -> tuple[int, int, tuple[Frame | bytes, ...]] | Event | None:
        """Verify and decrypt a sealed packet (nothing is decoded before the tag verifies):
        its incarnation, sequence and frames; or the handshake event it is; or None for
        one handled here (this node's own, a hello answered or not)."""
        opener = self._opener
        if opener is None:
            raise Unauthenticated("a sealed packet, but this node has no keys")
        if int.from_bytes(data[8:16], "big") == self.incarnation:
            # Never opened: only this node seals with its incarnation.
            self._count_reflected(arrival)
            return None
        try:
            sender, sequence, body, flags = opener.open(data, self.incarnation)
        except Unauthenticated:
            flags, key_id, sender, sequence = sealed_header(data)
            if flags == SEALED:  # perhaps sealed for this node before it restarted: say so
                answer = self._answer(arrival, key_id, sender, sequence, len(data))
                if answer is not None:  # answered, and dropped all the same
                    self.count_bad_packet(Unauthenticated(
                        "sealed for an incarnation of this node that is gone"), arrival)
                    return answer
            raise
        key_id = sealed_key_id(data)
        if flags != SEALED:
            if flags & HELLO:
                return self._answer(arrival, key_id, sender, sequence, len(data))
            answered = answered_sequence(body)
            if answered > self.sequence:  # names no packet this incarnation sent
                return None
            return AnswerReceived(sender, answered)
        arrival.key_id = key_id
        return sender, sequence, decode_frames_compact(body)

    def _answer(self, arrival: Arrival, key_id: int, receiver: int, answered: int,
                size: int) -> AnswerToSend | None:
        """Tell incarnation ``receiver`` at the source this node's incarnation, answering
        its packet ``answered`` (a hello, or a packet sealed for another incarnation).

        Stateless but for the per-source budget; never more bytes than the packet it
        answers, and only under a key this node holds, for a sender that names itself.
        """
        opener = self._opener
        if (size < HANDSHAKE_PACKET_SIZE or not receiver or not answered
                or opener is None or not opener.holds(key_id)):
            return None
        source = arrival.source
        if not self._answer_budget.allows((arrival.scheme, source[0], source[1]),
                                          self._clock()):
            arrival.counters.handshake_answers_limited += 1
            self._log.warning("handshake_answers_limited", "sent no handshake answer to %s: "
                              "it drew its share this second", _where(arrival))
            return None
        packet = self._reply_sealer(key_id).seal(
            self.incarnation, receiver, self.next_sequence(), answer_body(answered),
            SEALED | ANSWER)
        return AnswerToSend(packet)

    # -- counting ------------------------------------------------------------

    def messages_in(self, data: bytes) -> int:
        """How many messages a received packet holds, to count them when it is dropped."""
        return messages_in_packet(data, self._opener, self.incarnation)

    def count_bad_packet(self, error: MalformedFrame, arrival: Arrival) -> None:
        counters = arrival.counters
        if isinstance(error, ChecksumMismatch):
            counters.corrupt += 1
            kind, what = "corrupt", "a damaged"
        elif isinstance(error, Unauthenticated):
            counters.unauthenticated += 1
            kind, what = "unauthenticated", "an unauthenticated"
        else:
            counters.malformed += 1
            kind, what = "malformed", "a malformed"
        self._log.warning(kind, "dropped %s packet from %s: %s", what, _where(arrival), error)

    def _count_reflected(self, arrival: Arrival) -> None:
        arrival.counters.reflected += 1
        self._log.warning("reflected", "dropped a packet from %s that carries this node's "
                          "own incarnation", _where(arrival))


def _where(arrival: Arrival) -> str:
    return endpoint_url(arrival.scheme, arrival.source)


class PacketEvents(Arrival):
    """A received packet's :class:`Arrival` that is also the cursor over its events,
    taken one at a time with :meth:`next`: made by the driver, handed back loaded by
    :meth:`Endpoint.receive`. One object per packet, so a request, a reply or a cancel
    refers to it as its arrival.

    A cursor rather than a list: a message is decoded only when its turn comes,
    within what the packet's budgets have left then, and a driver that cannot take an
    event now (a full mailbox on a reliable transport) keeps it and goes on later
    where it stopped.
    """

    __slots__ = ("_decoder", "_first", "_frame", "_frames", "_index", "_then")

    # Set by load(), which the endpoint calls before anyone reads them: the driver
    # makes the object with Arrival's constructor alone.
    _frames: tuple[Frame | bytes, ...]
    _decoder: PayloadDecoder
    _first: Event | None
    """An event that comes before the frames' (or instead of them)."""
    _then: list[Event] | None
    """Events that follow ``_first`` before the frames', last one first."""
    _index: int
    _frame: Frame

    def load(self, frames: tuple[Frame | bytes, ...], decoder: PayloadDecoder,
             first: Event | None) -> PacketEvents:
        """Take the packet's ``frames`` (decoded by ``decoder`` as their turn comes), after
        ``first`` if that is not None; return itself, ready for :meth:`next`."""
        self._frames = frames
        self._decoder = decoder
        self._first = first
        self._then = None
        self._index = 0
        self._frame = NO_FRAME  # a packet's first item is a frame, never a repeat
        return self

    def load_events(self, decoder: PayloadDecoder, events: list[Event]) -> PacketEvents:
        """Take ``events`` (at least one), a packet's events in order, instead of frames;
        return itself, ready for :meth:`next`."""
        self.load((), decoder, events[0])
        if len(events) > 1:
            self._then = events[:0:-1]
        return self

    def next(self) -> Event | None:
        """The packet's next event; None once there is none left."""
        first = self._first
        if first is not None:
            then = self._then
            self._first = then.pop() if then else None
            return first
        frames = self._frames
        while self._index < len(frames):
            item = frames[self._index]
            self._index += 1
            frame = self._frame
            # A payload alone repeats the frame before it (see decode_packet_compact).
            if isinstance(item, bytes):
                if frame.kind is _MESSAGE:  # a burst to one actor: no frame is made
                    message = self._decoder.decode(frame, item, self)
                    if message is FAILED:
                        continue
                    self.counters.messages_received += 1
                    return MessageReceived(frame.target, message, self.decoded_size)
                frame = self._frame = with_payload(frame, item)
            else:
                frame = self._frame = item
            kind = frame.kind
            if kind is _MESSAGE:
                message = self._decoder.decode(frame, frame.payload, self)
                if message is FAILED:
                    continue
                self.counters.messages_received += 1
                return MessageReceived(frame.target, message, self.decoded_size)
            if kind is _REQUEST:
                return RequestReceived(frame, self)
            if kind is _CANCEL:
                return CancelReceived(frame.call_id, self)
            return ReplyReceived(frame, self)
        return None
