"""What the endpoint makes of a received packet: one event per thing the node must act on.

:meth:`Endpoint.receive <relay_core.protocol.endpoint.Endpoint.receive>` turns a
packet into these, in the order its frames came. Drops are not events: the
endpoint counts them in the packet's :class:`~relay_core.observe.stats.Counters`
and logs them (rate-limited) itself, so the driver sees only what it must act on.

Every value here is small and built per frame or per packet; a request, a
reply or a cancel carries its :class:`Arrival` because what the node answers
depends on how the packet came (sealed or not, from which incarnation) and on
what the packet may still draw (its decompression and resend budgets). The
arrival is also the packet's cursor: the events come from its :meth:`Arrival.next`.
"""

from __future__ import annotations

from ..interfaces import HostPort
from ..observe.stats import Counters
from .decoding import FAILED, PayloadDecoder
from .wire import NO_FRAME, Frame, FrameKind
from .wire_read import with_payload

__all__ = [
    "AnswerReceived",
    "AnswerToSend",
    "Arrival",
    "CancelReceived",
    "Event",
    "MessageReceived",
    "ReplyReceived",
    "RequestReceived",
    "SealedPacketAccepted",
]

_MESSAGE = FrameKind.MESSAGE
_REQUEST = FrameKind.REQUEST
_CANCEL = FrameKind.CANCEL


class Arrival:
    """One received packet: where it came from, how, what it may still draw, and its
    events, taken one at a time with :meth:`next`.

    Made by the driver; :meth:`Endpoint.receive
    <relay_core.protocol.endpoint.Endpoint.receive>` fills it in and hands it back
    holding the packet's frames. One object per packet, so a request, a reply or a
    cancel refers to it as its arrival, and the packet's cursor and budgets are one.

    A cursor rather than a list of events: a message is decoded only when its turn
    comes, within what the packet's budgets have left then, and a driver that cannot
    take an event now (a full mailbox on a reliable transport) keeps the arrival and
    goes on later where it stopped.
    """

    __slots__ = ("_decoder", "_first", "_frame", "_frames", "_index", "counters",
                 "decoded_size", "expansion_left", "incarnation", "key_id", "resend_left",
                 "scheme", "source")

    def __init__(self, scheme: str, source: HostPort, counters: Counters) -> None:
        self.scheme = scheme
        self.source = source
        self.counters = counters
        """The source's counters: every drop of this packet's frames is counted here."""
        self.incarnation = 0
        """The sender's incarnation, as the packet states it (0 for a Heph datagram)."""
        self.key_id: int | None = None
        """The key id a sealed packet was sealed under (replies are sealed alike), or None."""
        self.expansion_left = 0
        """What the packet's compressed frames may still decompress to, together."""
        self.resend_left = 0
        """Bytes that cached replies may still take in answer to this packet."""
        self.decoded_size = 0
        """What the payload decoded last decompressed to: its weight in a mailbox."""
        self._frames: tuple[Frame | bytes, ...] = ()
        self._decoder: PayloadDecoder | None = None
        self._first: Event | None = None
        """An event that comes before the frames' (or instead of them)."""
        self._index = 0
        self._frame = NO_FRAME  # a packet's first item is a frame, never a repeat

    @property
    def sealed(self) -> bool:
        """Whether the packet was sealed, and so authenticated."""
        return self.key_id is not None

    def load(self, frames: tuple[Frame | bytes, ...], decoder: PayloadDecoder,
             first: Event | None) -> Arrival:
        """Take the packet's ``frames`` (decoded by ``decoder`` as their turn comes), after
        ``first`` if that is not None; return this arrival, ready for :meth:`next`."""
        self._frames = frames
        self._decoder = decoder
        self._first = first
        return self

    def next(self) -> Event | None:
        """The packet's next event; None once there is none left."""
        first = self._first
        if first is not None:
            self._first = None
            return first
        frames = self._frames
        while self._index < len(frames):
            item = frames[self._index]
            self._index += 1
            frame = self._frame
            # A payload alone repeats the frame before it (see decode_packet_compact).
            if isinstance(item, bytes):
                if frame.kind is _MESSAGE:  # a burst to one actor: no frame is made
                    message = self._decode(frame, item)
                    if message is FAILED:
                        continue
                    self.counters.messages_received += 1
                    return MessageReceived(frame.target, message, self.decoded_size)
                frame = self._frame = with_payload(frame, item)
            else:
                frame = self._frame = item
            kind = frame.kind
            if kind is _MESSAGE:
                message = self._decode(frame, frame.payload)
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

    def _decode(self, frame: Frame, payload: bytes) -> object:
        decoder = self._decoder
        assert decoder is not None  # frames come only with their decoder (load)
        return decoder.decode(frame, payload, self)


class MessageReceived:
    """A one-way message, decoded, for the local actor named ``target``."""

    __slots__ = ("message", "size", "target")

    def __init__(self, target: str, message: object, size: int) -> None:
        self.target = target
        self.message = message
        self.size = size
        """What the message weighs in a mailbox: its decoded payload's size."""


class RequestReceived:
    """A request frame, not yet decoded: the node first checks whether it is a retry."""

    __slots__ = ("arrival", "frame")

    def __init__(self, frame: Frame, arrival: Arrival) -> None:
        self.frame = frame
        self.arrival = arrival


class ReplyReceived:
    """A RESPONSE or ERROR frame, not yet decoded: decoded only for a call that waits."""

    __slots__ = ("arrival", "frame")

    def __init__(self, frame: Frame, arrival: Arrival) -> None:
        self.frame = frame
        self.arrival = arrival


class CancelReceived:
    """The caller gave up on its request ``call_id``."""

    __slots__ = ("arrival", "call_id")

    def __init__(self, call_id: int, arrival: Arrival) -> None:
        self.call_id = call_id
        self.arrival = arrival


class AnswerReceived:
    """An authentic handshake answer: incarnation ``sender`` answers this node's packet
    ``answered`` (a hello, or a packet sealed for an incarnation of the peer now gone)."""

    __slots__ = ("answered", "sender")

    def __init__(self, sender: int, answered: int) -> None:
        self.sender = sender
        self.answered = answered


class AnswerToSend:
    """A handshake answer for the packet's source: send ``packet`` back there as it is."""

    __slots__ = ("packet",)

    def __init__(self, packet: bytes) -> None:
        self.packet = packet


class SealedPacketAccepted:
    """A sealed packet from incarnation ``incarnation`` passed every check: its source's
    link may seal for that incarnation from now on."""

    __slots__ = ("incarnation",)

    def __init__(self, incarnation: int) -> None:
        self.incarnation = incarnation


Event = (MessageReceived | RequestReceived | ReplyReceived | CancelReceived | AnswerReceived
         | AnswerToSend | SealedPacketAccepted)
