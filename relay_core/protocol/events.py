"""What the endpoint makes of a received packet: one event per thing the node must act on.

:meth:`Endpoint.receive <relay_core.protocol.endpoint.Endpoint.receive>` turns a
packet into these, in the order its frames came. Drops are not events: the
endpoint counts them in the packet's :class:`~relay_core.observe.stats.Counters`
and logs them (rate-limited) itself, so the driver sees only what it must act on.

Every value here is small and built per frame or per packet; a request, a
reply or a cancel carries its :class:`Arrival` because what the node answers
depends on how the packet came (sealed or not, from which incarnation) and on
what the packet may still draw (its decompression and resend budgets). The
arrival is also the packet's cursor (a
:class:`~relay_core.protocol.endpoint.PacketEvents`).
"""

from __future__ import annotations

from ..interfaces import HostPort
from ..observe.stats import Counters
from .wire import PACKET_HEADER_SIZE, Frame

__all__ = [
    "AnswerReceived",
    "AnswerToSend",
    "Arrival",
    "CancelReceived",
    "Event",
    "HephMessageReceived",
    "MessageReceived",
    "ReplyReceived",
    "RequestReceived",
    "SealedPacketAccepted",
]


class Arrival:
    """One received packet, as far as its frames need to know: where it came from, how,
    and what it may still draw. Filled in by the endpoint; the driver makes it as a
    :class:`~relay_core.protocol.endpoint.PacketEvents`, which is also the cursor over
    the packet's events, so a packet is one object."""

    __slots__ = ("counters", "decoded_size", "expansion_left", "incarnation", "key_id",
                 "resend_left", "scheme", "source")

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

    @property
    def sealed(self) -> bool:
        """Whether the packet was sealed, and so authenticated."""
        return self.key_id is not None

    def draw_resend(self, frame_size: int) -> bool:
        """Take a packet of one ``frame_size``-byte frame from what may still be sent in
        answer to this packet; False, and nothing taken, if it does not fit."""
        cost = frame_size + PACKET_HEADER_SIZE
        if cost > self.resend_left:
            return False
        self.resend_left -= cost
        return True


class MessageReceived:
    """A one-way message, decoded, for the local actor named ``target``."""

    __slots__ = ("message", "size", "target")

    def __init__(self, target: str, message: object, size: int) -> None:
        self.target = target
        self.message = message
        self.size = size
        """What the message weighs in a mailbox: its decoded payload's size."""


class HephMessageReceived:
    """A Heph message, decoded, for the local actor ``target``, to be delivered with its
    source and a way to answer it (a listener's ``heph_with_source``)."""

    __slots__ = ("message", "size", "target")

    def __init__(self, target: str, message: object, size: int) -> None:
        self.target = target
        self.message = message
        self.size = size
        """What the message weighs in a mailbox: the size of its heph-json object."""


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


Event = (MessageReceived | HephMessageReceived | RequestReceived | ReplyReceived | CancelReceived | AnswerReceived
         | AnswerToSend | SealedPacketAccepted)
