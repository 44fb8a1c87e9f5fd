"""Wire format v1: packets of frames, and how they are written, without any I/O.

A packet is a 24-byte header (magic ``NR``, version, flags, CRC-32 checksum,
sender incarnation, sequence number) followed by one or more frames;
docs/protocol.md describes every byte. This module holds the format (its
constants, :class:`FrameKind`, :class:`Frame`, :class:`Packet` and the per-kind
rules) and writes it; relay_core.protocol.wire_read reads it. The rules kept here:

- encoding and decoding check the per-kind rules against one shared table
  (:data:`KIND_BY_BYTE`, :func:`rule_violation`), so whatever :func:`encode_frame`
  accepts, decoding returns equal, and the encoding is canonical: every accepted
  packet re-encodes to itself;
- encoding raises nothing but :class:`MalformedFrame` for a value the format does
  not allow, and :class:`MessageTooLarge` for one too long for its length field.
"""
from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Sequence
from typing import Final, NamedTuple

from ..errors import MalformedFrame, MessageTooLarge

__all__ = [
    "FRAME_HEADER_SIZE",
    "FRAME_WORDS",
    "HAS_CALL_ID",
    "HAS_CODEC",
    "HAS_COMPRESSOR",
    "HAS_DEADLINE",
    "HAS_PAYLOAD",
    "HAS_TARGET",
    "HEAD_CRC",
    "KIND_BY_BYTE",
    "MAGIC",
    "MAX_SEQUENCE",
    "NAME_CHARS",
    "NAME_RULE",
    "NO_DEADLINE",
    "NO_FRAME",
    "PACKET_HEADER_SIZE",
    "PRINTABLE_RULE",
    "SEALED",
    "WIRE_VERSION",
    "Frame",
    "FrameKind",
    "Packet",
    "PacketWriter",
    "encode_frame",
    "encode_lone_packet",
    "encode_packet",
    "frame_is_compressed",
    "is_sealed",
    "rule_violation",
]

MAGIC: Final = b"NR"
WIRE_VERSION: Final = 1
PACKET_HEADER_SIZE: Final = 24
FRAME_HEADER_SIZE: Final = 24
NO_DEADLINE: Final = 0xFFFFFFFF
MAX_SEQUENCE: Final = 2**64 - 1
"""Largest incarnation, sequence number and call id (u64)."""
SEALED: Final = 0x01
"""Packet flag bit 0: the packet is sealed (its layout is in ``relay_core.protocol.seal``)."""
_VERSIONED_MAGIC: Final = MAGIC + bytes([WIRE_VERSION])

# The first 4 covered bytes are always magic, version 1 and flags 0, so their
# CRC is a constant: encoding and verifying start from it.
_HEAD: Final = _VERSIONED_MAGIC + bytes([0])
HEAD_CRC: Final = zlib.crc32(_HEAD)
"""CRC-32 of bytes 0 to 3 of a plain packet, where every plain packet's checksum starts."""
_crc32: Final = zlib.crc32
_FRAME_HEADER: Final = struct.Struct("!BBBBBBBBQII")
FRAME_WORDS: Final = struct.Struct("!QII")  # call id, deadline, payload length: bytes 8 to 23
_MAX_NAME: Final = 0xFF
_MAX_PAYLOAD: Final = 0xFFFFFFFF
# Checked with bytes.translate(None, allowed): whatever survives is not allowed.
NAME_CHARS: Final = b"abcdefghijklmnopqrstuvwxyz0123456789._-"
NAME_RULE: Final = "lowercase ASCII letters, digits, '.', '_' and '-'"
_PRINTABLE: Final = bytes(range(0x20, 0x7F))
PRINTABLE_RULE: Final = "printable ASCII (0x20 to 0x7e)"
# Codec and compressor names repeat in nearly every frame: remember a few valid ones.
_NAME_CACHE_SIZE: Final = 64
_ENCODED_NAMES: Final[dict[str, bytes]] = {"": b""}
_PAYLOAD_LENGTH: Final = struct.Struct("!I")
_pack_frame_words: Final = FRAME_WORDS.pack
_pack_frame_header: Final = _FRAME_HEADER.pack


class FrameKind(enum.IntEnum):
    """What a frame asks of its receiver: the frame's first byte."""

    MESSAGE = 1
    """A one-way message for the target actor."""
    REQUEST = 2
    """An RPC request for the target actor; ``call_id`` names it."""
    RESPONSE = 3
    """The reply to the request with the same ``call_id``."""
    ERROR = 4
    """The failure of the request with the same ``call_id``."""
    CANCEL = 5
    """The sender gave up the request with the same ``call_id``."""


class Frame(NamedTuple):
    """One message, request, reply or cancel, as it travels inside a packet.

    A named tuple rather than a frozen dataclass: the decoder builds one per
    frame received, and a tuple is built in a quarter of the time.
    """

    kind: FrameKind
    codec: str
    """Name of the codec that encoded ``payload``; empty only for CANCEL."""
    payload: bytes
    """The encoded (then maybe compressed) message; empty for CANCEL."""
    compressor: str = ""
    """Name of the compressor applied after the codec; empty when uncompressed."""
    target: str = ""
    """Local name of the receiving actor (MESSAGE and REQUEST only)."""
    call_id: int = 0
    """Ties a REQUEST to its RESPONSE, ERROR or CANCEL; 0 for MESSAGE."""
    deadline_ms: int | None = None
    """Milliseconds a REQUEST may still take; None means no deadline."""
    request_id: str = ""
    """The traceable request id, for logs; empty when there is none."""
    traceparent: str = ""
    """W3C ``traceparent`` header value; empty when there is none."""


NO_FRAME: Final = Frame(FrameKind.CANCEL, "", b"")
"""A placeholder frame where one is needed before any was read; no packet holds it."""


class Packet(NamedTuple):
    """A decoded packet: who sent it, its place in their sequence, its frames.

    A named tuple like :class:`Frame`, and for the same reason: one is built
    per packet received.
    """

    incarnation: int
    """Random per sender process start; never 0."""
    sequence: int
    """Starts at 1 for each incarnation and grows by 1 per packet."""
    frames: tuple[Frame, ...]


# The per-kind rules, shared by encoding and decoding: a frame's shape has one
# bit per part that is present, and a kind fixes the bits in its mask.
HAS_CODEC: Final = 1
HAS_COMPRESSOR: Final = 2
HAS_TARGET: Final = 4
HAS_CALL_ID: Final = 8
HAS_DEADLINE: Final = 16
HAS_PAYLOAD: Final = 32
_PART_NAMES: Final = {
    HAS_CODEC: "codec name",
    HAS_COMPRESSOR: "compressor name",
    HAS_TARGET: "target actor name",
    HAS_CALL_ID: "call id",
    HAS_DEADLINE: "deadline",
    HAS_PAYLOAD: "payload",
}
_RULES: Final = {  # kind: (mask, bits within the mask that must be set)
    FrameKind.MESSAGE: (HAS_CODEC | HAS_TARGET | HAS_CALL_ID | HAS_DEADLINE, HAS_CODEC | HAS_TARGET),
    FrameKind.REQUEST: (HAS_CODEC | HAS_TARGET | HAS_CALL_ID, HAS_CODEC | HAS_TARGET | HAS_CALL_ID),
    FrameKind.RESPONSE: (HAS_CODEC | HAS_TARGET | HAS_CALL_ID | HAS_DEADLINE, HAS_CODEC | HAS_CALL_ID),
    FrameKind.ERROR: (HAS_CODEC | HAS_TARGET | HAS_CALL_ID | HAS_DEADLINE, HAS_CODEC | HAS_CALL_ID),
    FrameKind.CANCEL: (63, HAS_CALL_ID),
}
_KINDS: Final[dict[int, tuple[FrameKind, int, int]]] = {
    kind.value: (kind, mask, required) for kind, (mask, required) in _RULES.items()
}
# Decoding indexes this by the kind byte and gets the kind and its rule together
# (None for an unknown kind): no hashing per frame.
KIND_BY_BYTE: Final[tuple[tuple[FrameKind, int, int] | None, ...]] = tuple(
    _KINDS.get(byte) for byte in range(256)
)


def _shape(frame: Frame) -> int:
    return (
        (HAS_CODEC if frame.codec else 0)
        | (HAS_COMPRESSOR if frame.compressor else 0)
        | (HAS_TARGET if frame.target else 0)
        | (HAS_CALL_ID if frame.call_id else 0)
        | (HAS_DEADLINE if frame.deadline_ms is not None else 0)
        | (HAS_PAYLOAD if frame.payload else 0)
    )


def rule_violation(kind: FrameKind, shape: int) -> str:
    """Say which of ``kind``'s rules a frame of ``shape`` breaks, and what the rules are."""
    mask, required = _RULES[kind]
    wrong = (shape & mask) ^ required
    missing = _part_list(wrong & required, "and")
    extra = _part_list(wrong & ~required, "or")
    problem = " and ".join(
        text for text in (missing and f"lacks {missing}", extra and f"has {extra}") if text
    )
    rule = f"needs {_part_list(required, 'and')}"
    if mask & ~required:
        rule += f" and may not have {_part_list(mask & ~required, 'or')}"
    return f"this {kind.name} {problem}; a {kind.name} {rule} (a call id of 0 counts as none)"


def _part_list(bits: int, conjunction: str) -> str:
    names = [f"a {name}" for bit, name in _PART_NAMES.items() if bits & bit]
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} {conjunction} {names[-1]}"


def encode_frame(frame: Frame) -> bytes:
    """Return the wire form of ``frame``.

    Raise :class:`MalformedFrame` for a value the format does not allow and
    :class:`MessageTooLarge` for a name or payload too long for its length field.
    """
    try:
        entry = _KINDS.get(frame.kind)
    except TypeError:  # compiled, reading a field checks it holds its declared type
        entry = None
    if entry is None:
        kind: object = tuple.__getitem__(frame, 0)
        raise MalformedFrame(f"frame kind {kind!r} is not one of 1 to 5")
    kind, mask, required = entry
    shape = _shape(frame)
    if shape & mask != required:
        raise MalformedFrame(f"cannot encode the frame: {rule_violation(kind, shape)}")
    codec = _name_field(frame.codec, "codec name")
    compressor = _name_field(frame.compressor, "compressor name")
    target = _target_field(frame.target)
    request_id = _printable_field(frame.request_id, "request id")
    traceparent = _printable_field(frame.traceparent, "trace parent")
    payload = frame.payload
    header = _pack_frame_header(
        kind, 0, len(codec), len(compressor), len(target), len(request_id), len(traceparent), 0,
        _call_id_field(frame.call_id), _deadline_field(frame.deadline_ms), _payload_length(payload),
    )  # fmt: skip
    return b"".join((header, codec, compressor, target, request_id, traceparent, payload))


def _name_field(value: str, what: str) -> bytes:
    raw = _ENCODED_NAMES.get(value)
    if raw is None:
        raw = _ascii_field(value, NAME_CHARS, what, NAME_RULE)
        if len(_ENCODED_NAMES) < _NAME_CACHE_SIZE:
            _ENCODED_NAMES[value] = raw
    return raw


def _printable_field(value: str, what: str) -> bytes:
    if not value:
        return b""
    # A request id (ASCII letters and digits) passes on two checks the compiled
    # build makes without a method call; str.isalnum alone would admit any script.
    # One byte per character then, so its length is known before it is encoded.
    if value.isalnum() and len(value) <= _MAX_NAME:
        try:
            return value.encode("ascii")
        except UnicodeEncodeError:
            pass
    # Together these admit exactly 0x20 to 0x7e, and cost half the table check.
    if value.isascii() and value.isprintable():
        return _checked_length(value.encode("ascii"), what)
    return _ascii_field(value, _PRINTABLE, what, PRINTABLE_RULE)


def _ascii_field(value: str, allowed: bytes, what: str, rule: str) -> bytes:
    # surrogatepass: a lone surrogate becomes bytes >= 0x80, which the check rejects.
    raw = value.encode("utf-8", "surrogatepass")
    if raw.translate(None, allowed):
        raise MalformedFrame(f"{what} {value!r} may only hold {rule}")
    return _checked_length(raw, what)


def _target_field(value: str) -> bytes:
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedFrame(f"target actor name {value!r} is not valid Unicode text") from None
    return _checked_length(raw, "target actor name")


def _checked_length(raw: bytes, what: str) -> bytes:
    if len(raw) > _MAX_NAME:
        raise MessageTooLarge(len(raw), _MAX_NAME, f"the {what} is limited to {_MAX_NAME} bytes")
    return raw


def _call_id_field(call_id: int) -> int:
    if not 0 <= call_id <= MAX_SEQUENCE:
        raise MalformedFrame(f"call id {call_id} is outside 0 to 2**64-1")
    return call_id


def _deadline_field(deadline_ms: int | None) -> int:
    if deadline_ms is None:
        return NO_DEADLINE
    if not 0 <= deadline_ms < NO_DEADLINE:
        raise MalformedFrame(f"deadline of {deadline_ms} ms is outside 0 to {NO_DEADLINE - 1}")
    return deadline_ms


def encode_packet(incarnation: int, sequence: int, frames: Sequence[bytes]) -> bytes:
    """Return a packet: the header, then ``frames`` (each from :func:`encode_frame`)."""
    return PacketWriter(incarnation).packet(sequence, frames)


def encode_lone_packet(incarnation: int, sequence: int, frame: bytes) -> bytes:
    """:func:`encode_packet` for one frame (a request, a reply): no sequence of frames."""
    return PacketWriter(incarnation).lone(sequence, frame)


class PacketWriter:
    """Encodes the packets of one sender incarnation, as :func:`encode_packet` does.

    A sender's header is the same up to its sequence number, so those bytes are
    packed, and their CRC taken, once, here: a packet then costs one CRC over
    its sequence number and frames, and one join. A node keeps one writer.
    """

    __slots__ = ("_crc_through_incarnation", "_incarnation_field", "incarnation")

    def __init__(self, incarnation: int) -> None:
        if not 0 < incarnation <= MAX_SEQUENCE:
            raise MalformedFrame(f"incarnation {incarnation} is outside 1 to 2**64-1")
        self.incarnation = incarnation
        self._incarnation_field = incarnation.to_bytes(8, "big")
        self._crc_through_incarnation = _crc32(self._incarnation_field, HEAD_CRC)

    def packet(self, sequence: int, frames: Sequence[bytes]) -> bytes:
        """The packet numbered ``sequence`` that carries ``frames``."""
        if len(frames) == 1:
            return self.lone(sequence, frames[0])
        if not frames:
            raise MalformedFrame("a packet carries at least one frame")
        # Joining twice copies the frames once more, which measured cheaper than one
        # crc32 call per frame.
        return self._finish(b"".join((_sequence_field(sequence), *frames)))

    def lone(self, sequence: int, frame: bytes) -> bytes:
        """The packet numbered ``sequence`` that carries the one frame ``frame``."""
        return self._finish(_sequence_field(sequence) + frame)

    def _finish(self, tail: bytes) -> bytes:
        """The packet whose bytes from the sequence number on are ``tail``."""
        checksum = _crc32(tail, self._crc_through_incarnation)
        return b"".join((_HEAD, checksum.to_bytes(4, "big"), self._incarnation_field, tail))


def _sequence_field(sequence: int) -> bytes:
    # A shift rather than a comparison with 2**64-1, which the compiled build
    # could only make as two boxed integers; and int.to_bytes, which it makes
    # natively, rather than a call to struct (here and for the checksum).
    if sequence <= 0 or sequence >> 64:
        raise MalformedFrame(f"sequence number {sequence} is outside 1 to 2**64-1")
    return sequence.to_bytes(8, "big")


def is_sealed(packet: bytes) -> bool:
    """Tell whether ``packet`` claims to be sealed (magic, version 1, flag bit 0); no crypto."""
    return len(packet) > 3 and bool(packet[3] & SEALED) and packet.startswith(_VERSIONED_MAGIC)


def frame_is_compressed(frame: bytes) -> bool:
    """Whether an encoded frame names a compressor (byte 3 of its header is the length of
    the compressor's name)."""
    return len(frame) > 3 and frame[3] != 0


class MessageFrameEncoder:
    """Encodes MESSAGE frames to one actor that differ only in their payload.

    Everything but the payload length is checked and encoded once, when made,
    so a frame costs one join: the per-message path of a node sending to an
    actor. A class rather than a closure: the compiled build calls ``encode``
    natively, with no arguments boxed and parsed, and an instance is smaller.
    """

    __slots__ = ("_head", "_names")

    def __init__(self, codec: str, compressor: str, target: str) -> None:
        template = encode_frame(Frame(FrameKind.MESSAGE, codec, b"", compressor, target))
        self._head = template[: FRAME_HEADER_SIZE - _PAYLOAD_LENGTH.size]
        self._names = template[FRAME_HEADER_SIZE:]

    def encode(self, payload: bytes) -> bytes:
        return b"".join((self._head, _payload_length(payload).to_bytes(4, "big"), self._names,
                         payload))


class RequestFrameEncoder:
    """Encodes REQUEST frames to one actor: the per-call path of a caller.

    The names are checked and encoded once, when made; each frame then checks
    only what varies (call id, deadline, the two ids and the payload length).
    """

    __slots__ = ("_head", "_id_lengths", "_names", "_start", "compressor", "target")

    def __init__(self, codec: str, compressor: str, target: str) -> None:
        template = encode_frame(Frame(FrameKind.REQUEST, codec, b"", compressor, target,
                                      call_id=1))
        self._names = template[FRAME_HEADER_SIZE:]
        self._start = template[:5]  # kind, flags and the three name lengths
        # The header's first eight bytes for the last lengths of the two ids,
        # which rarely change from call to call.
        self._id_lengths = -1
        self._head = b""
        self.compressor = compressor
        self.target = target

    def encode(self, payload: bytes, call_id: int, deadline_ms: int, request_id: str,
               traceparent: str) -> bytes:
        """``(payload, call_id, deadline_ms, request_id, traceparent) -> frame``"""
        rid = _printable_field(request_id, "request id")
        parent = _printable_field(traceparent, "trace parent") if traceparent else b""
        id_lengths = len(rid) << 8 | len(parent)
        if id_lengths != self._id_lengths:
            self._head = self._start + bytes((len(rid), len(parent), 0))
            self._id_lengths = id_lengths
        words = _pack_frame_words(_nonzero_call_id(call_id), _deadline_field(deadline_ms),
                                  _payload_length(payload))
        return b"".join((self._head, words, self._names, rid, parent, payload))


class ReplyFrameEncoder:
    """Encodes RESPONSE (or ERROR) frames in one codec and compressor: the
    per-request path of a server."""

    __slots__ = ("_head", "_id_length", "_names", "_start")

    def __init__(self, kind: FrameKind, codec: str, compressor: str) -> None:
        template = encode_frame(Frame(kind, codec, b"", compressor, call_id=1))
        self._names = template[FRAME_HEADER_SIZE:]
        self._start = template[:5]  # kind, flags, the two name lengths and no target
        self._id_length = -1
        self._head = b""

    def encode(self, payload: bytes, call_id: int, request_id: str) -> bytes:
        """``(payload, call_id, request_id) -> frame``"""
        rid = _printable_field(request_id, "request id")
        if len(rid) != self._id_length:
            self._head = self._start + bytes((len(rid), 0, 0))
            self._id_length = len(rid)
        words = _pack_frame_words(_nonzero_call_id(call_id), NO_DEADLINE, _payload_length(payload))
        return b"".join((self._head, words, self._names, rid, payload))


def _nonzero_call_id(call_id: int) -> int:
    """The call id of a request or reply: 1 to 2**64-1."""
    # A shift rather than a comparison with 2**64-1, which the compiled build
    # could only make as two boxed integers.
    if call_id <= 0 or call_id >> 64:
        raise MalformedFrame(f"call id {call_id} is outside 1 to 2**64-1")
    return call_id


def _payload_length(payload: bytes) -> int:
    if len(payload) > _MAX_PAYLOAD:
        raise MessageTooLarge(len(payload), _MAX_PAYLOAD, "a frame payload length is a u32")
    return len(payload)










