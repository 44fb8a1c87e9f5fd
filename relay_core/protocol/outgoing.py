"""One link's outbound door, without I/O: messages and frames in, packets out.

An :class:`Outgoing` belongs to one link and knows what that link speaks. It
encodes a value with the link's codec (and compressor, when that makes it
smaller), frames it for its target, coalesces the frames
(:mod:`relay_core.protocol.coalesce`) into packets as large as the link's
destination takes, and makes each packet: numbered by the node's
:class:`~relay_core.protocol.endpoint.Endpoint` and, on a link with keys,
sealed for the peer's incarnation. What a link speaks is chosen once, when the
link is made (:func:`outgoing_for`):

- :class:`Outgoing` itself: net-relay packets;
- :class:`SealedPackets`: net-relay packets sealed per direction; the peer's
  incarnation is learned by the handshake (``hello``) before anything is sealed;
- :class:`HephDatagrams`: Heph's JSON datagrams (docs/heph.md), one message
  each, naming no actor; Heph has no requests;
- :class:`HephBareMessages`: bare JSON messages, no envelope, each its own
  packet: what Heph's tcp relay reads on the connection it opened, so the
  answers to a Heph node go back that way.

When packets leave (now, or when the event loop's turn ends) and what a send
failure does is the runtime's (``runtime/outbox.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

from ..errors import MessageTooLarge
from ..interfaces import Codec, Compressor
from .coalesce import UNKNOWN_EXPANSION, Coalescer
from .endpoint import Endpoint
from .heph import encode_bare, encode_datagram
from .seal import TAG_SIZE, Sealer, messages_in_packet
from .wire import MessageFrameEncoder, RequestFrameEncoder, frame_is_compressed

__all__ = [
    "HephBareMessages",
    "HephDatagrams",
    "Outgoing",
    "SealedPackets",
    "encode_payload",
    "outgoing_for",
]

MAX_FRAME_ENCODERS: Final = 256

K = TypeVar("K")
T = TypeVar("T")


def encode_payload(encode_value: Callable[[object], bytes], compressor: Compressor | None,
                   value: object, limit: int) -> tuple[bytes, str, int]:
    """``value`` as a frame's payload (by a codec's bound ``encode``), the name of the
    compressor it went through ("" for none), and what a compressed payload expands to
    (0 for one not compressed); MessageTooLarge past ``limit`` bytes before compression."""
    payload = encode_value(value)
    if len(payload) > limit:
        raise MessageTooLarge(len(payload), limit, "raise [node] max_message_size to allow it")
    if compressor is not None:
        packed = compressor.compress(payload)
        if packed is not None:
            return packed, compressor.name, len(payload)
    return payload, "", 0


class Outgoing:
    """What one link sends: see the module docstring. This class makes plain packets."""

    __slots__ = (
        "_endpoint",
        "coalescer",
        "codec",
        "compressor",
        "encode_value",
        "frame_encoders",
        "last_request_encoder",
        "max_message_size",
    )

    takes_requests: bool = True
    """False for a format with no requests (and so no replies)."""

    def __init__(self, endpoint: Endpoint, codec: Codec, compressor: Compressor | None,
                 max_message_size: int, batch_size: int, max_packet_size: int) -> None:
        self._endpoint = endpoint
        self.max_message_size = max_message_size
        """The largest payload this link encodes, before compression."""
        self.codec = codec
        self.encode_value: Callable[[object], bytes] = codec.encode
        """The codec's ``encode``."""
        self.compressor = compressor
        self.coalescer = self._coalescer(batch_size, max_packet_size)
        self.frame_encoders: dict[tuple[str, str], MessageFrameEncoder] = {}
        """MESSAGE frame encoders by (target, compressor name): a frame costs one join."""
        self.last_request_encoder: RequestFrameEncoder | None = None
        """The REQUEST frame encoder this link used last (see :meth:`request_encoder`)."""

    # -- messages in ---------------------------------------------------------

    def message(self, target: str, message: object) -> tuple[bytes, int]:
        """``message`` for ``target`` as a frame, and what its payload expands to (see
        :meth:`Coalescer.add <relay_core.protocol.coalesce.Coalescer.add>`)."""
        payload, compressor, expanded = encode_payload(
            self.encode_value, self.compressor, message, self.max_message_size)
        encoder = self.frame_encoders.get((target, compressor))
        if encoder is None:
            encoder = self._frame_encoder(target, compressor)
        return encoder.encode(payload), expanded

    def _frame_encoder(self, target: str, compressor: str) -> MessageFrameEncoder:
        encoder = MessageFrameEncoder(self.codec.name, compressor, target)
        _remember(self.frame_encoders, (target, compressor), encoder)
        return encoder

    def request_encoder(self, target: str, compressor: str) -> RequestFrameEncoder:
        """The encoder for REQUEST frames to ``target``.

        Shared by every link in the process rather than kept per link: the
        same few targets are called through many links (a node calling the
        same actor on a thousand peers), and an encoder per link cost about
        900 bytes per peer in the idle-peer memory bench. The link keeps the
        last one it used, so calls to one actor skip the shared table.
        """
        last = self.last_request_encoder
        if last is not None and last.target == target and last.compressor == compressor:
            return last
        key = (self.codec.name, compressor, target)
        encoder = _REQUEST_ENCODERS.get(key)
        if encoder is None:
            encoder = RequestFrameEncoder(*key)
            _remember(_REQUEST_ENCODERS, key, encoder)
        self.last_request_encoder = encoder
        return encoder

    # -- frames in, packets out ---------------------------------------------

    def lone(self, frame: bytes) -> bytes | None:
        """``frame`` as a packet of its own, if it may leave so now (nothing waits before
        it, and it fits); else None, and it goes through :meth:`add`."""
        if self.coalescer.takes_alone(frame):
            return self._endpoint.lone_packet(frame)
        return None

    def add(self, frame: bytes, expanded: int = 0) -> bool:
        """Queue ``frame``; True when a packet is full (take it with :meth:`full_packets`);
        MessageTooLarge if no packet of this link holds it."""
        return self.coalescer.add(frame, expanded)

    def full_packets(self) -> list[bytes]:
        """The packets filled so far; the frames of one not yet full stay queued."""
        return self._packets(self.coalescer.take_full())

    def packets(self) -> list[bytes]:
        """Every queued frame, in packets."""
        return self._packets(self.coalescer.drain())

    def drop_queued(self) -> int:
        """Forget the queued frames (the link cannot send); how many there were."""
        return sum(len(group) for group in self.coalescer.drain())

    def _packets(self, groups: list[list[bytes]]) -> list[bytes]:
        packet = self._endpoint.packet
        return [packet(group) for group in groups]

    def resize(self, batch_size: int, max_packet_size: int) -> int:
        """Use these packet limits from now on; return how many queued frames no longer fit."""
        waiting = [frame for group in self.coalescer.drain() for frame in group]
        self.coalescer = self._coalescer(batch_size, max_packet_size)
        dropped = 0
        for frame in waiting:
            try:
                # What a compressed one expands to was not kept: it goes alone.
                self.coalescer.add(frame, UNKNOWN_EXPANSION if frame_is_compressed(frame) else 0)
            except MessageTooLarge:
                dropped += 1
        return dropped

    def _coalescer(self, batch_size: int, max_packet_size: int) -> Coalescer:
        return Coalescer(min(batch_size, max_packet_size), max_packet_size)

    def __bool__(self) -> bool:
        """Whether frames are queued."""
        return bool(self.coalescer)

    @property
    def queued_bytes(self) -> int:
        return self.coalescer.queued_bytes

    def messages_in(self, packet: bytes) -> int:
        """How many messages (requests and replies included) a packet this link made holds."""
        return messages_in_packet(packet, None, 0)


class SealedPackets(Outgoing):
    """net-relay packets sealed for the peer's incarnation (docs/protocol.md, section 9)."""

    __slots__ = ("answered", "peer_incarnation", "sealer")

    def __init__(self, endpoint: Endpoint, codec: Codec, compressor: Compressor | None,
                 max_message_size: int, batch_size: int, max_packet_size: int,
                 sealer: Sealer) -> None:
        self.sealer = sealer
        super().__init__(endpoint, codec, compressor, max_message_size, batch_size,
                         max_packet_size)
        self.peer_incarnation = 0
        """The peer incarnation packets are sealed for: learned by the handshake, from
        the request a reply link answers, or from the peer's own sealed packets; 0 until
        then (nothing is sealed for a link before it knows)."""
        self.answered = 0
        """The highest sequence number of this node's that an answer on this link named:
        an answer naming no later one is a replay, and ignored."""

    def hello(self) -> tuple[int, bytes]:
        """A hello for the peer's incarnation and its sequence (which the answer names);
        answers to what this node sent before it are not this link's."""
        sequence, packet = self._endpoint.hello(self.sealer)
        self.answered = sequence - 1
        return sequence, packet

    def accept_answer(self, answered: int) -> bool:
        """Whether an answer naming this node's packet ``answered`` is news (then it is
        remembered): one naming no packet sent after the last answer is a replay."""
        if answered <= self.answered:
            return False
        self.answered = answered
        return True

    def lone(self, frame: bytes) -> bytes | None:
        return None  # a sealed packet is made at the turn's end, once, for all its frames

    def _packets(self, groups: list[list[bytes]]) -> list[bytes]:
        sealed = self._endpoint.sealed_packet
        sealer, receiver = self.sealer, self.peer_incarnation
        return [sealed(group, sealer, receiver) for group in groups]

    def _coalescer(self, batch_size: int, max_packet_size: int) -> Coalescer:
        return Coalescer(min(batch_size, max_packet_size) - TAG_SIZE, max_packet_size - TAG_SIZE)

    def messages_in(self, packet: bytes) -> int:
        return messages_in_packet(packet, self.sealer, self.peer_incarnation)


class HephDatagrams(Outgoing):
    """Heph's JSON datagrams: each message is a whole datagram, and a "frame" is one."""

    __slots__ = ()

    takes_requests = False

    def message(self, target: str, message: object) -> tuple[bytes, int]:
        # Heph's envelope names no actor: the peer's router chooses.
        return encode_datagram(message), 0

    def lone(self, frame: bytes) -> bytes | None:
        return frame if self.coalescer.takes_alone(frame) else None

    def _packets(self, groups: list[list[bytes]]) -> list[bytes]:
        return [datagram for group in groups for datagram in group]

    def messages_in(self, packet: bytes) -> int:
        return 1


class HephBareMessages(HephDatagrams):
    """Bare JSON messages, no envelope (Heph's tcp relay reads its answers so), each a
    packet of its own, ended by a newline."""

    __slots__ = ()

    def message(self, target: str, message: object) -> tuple[bytes, int]:
        return encode_bare(message), 0


def outgoing_for(endpoint: Endpoint, codec: Codec, compressor: Compressor | None,
                 max_message_size: int, batch_size: int, max_packet_size: int, *,
                 sealer: Sealer | None = None, heph: bool = False,
                 bare: bool = False) -> Outgoing:
    """The outbound door for a link that speaks Heph's datagrams (``heph``), Heph's bare
    messages (``heph`` and ``bare``), seals with ``sealer``, or sends plain packets."""
    limits = (max_message_size, batch_size, max_packet_size)
    if heph:
        if bare:
            return HephBareMessages(endpoint, codec, compressor, *limits)
        return HephDatagrams(endpoint, codec, compressor, *limits)
    if sealer is not None:
        return SealedPackets(endpoint, codec, compressor, *limits, sealer)
    return Outgoing(endpoint, codec, compressor, *limits)


_REQUEST_ENCODERS: Final[dict[tuple[str, ...], RequestFrameEncoder]] = {}
"""By (codec, compressor, target); the encoders are pure, so nodes may share them."""


def _remember(cache: dict[K, T], key: K, value: T) -> None:
    # Targets come from the program, but bound the caches all the same.
    if len(cache) < MAX_FRAME_ENCODERS:
        cache[key] = value
