"""Wire format v1: packets of frames, encoded and decoded without any I/O.

A packet is a 24-byte header (magic ``NR``, version, flags, CRC-32 checksum,
sender incarnation, sequence number) followed by one or more frames;
docs/protocol.md describes every byte. The rules this module keeps:

- decoding accepts a packet whole or rejects it whole, and on any input raises
  nothing but :class:`MalformedFrame` (:class:`UnsupportedVersion` for a packet
  of another wire version, :class:`ChecksumMismatch` for a damaged one);
- the checksum is verified before the incarnation, the sequence number or any
  frame is read, so a damaged sequence number never reaches the duplicate window;
- encoding and decoding check the per-kind rules against one shared table, so
  whatever :func:`encode_frame` accepts, :func:`decode_packet` returns equal,
  and the encoding is canonical: every accepted packet re-encodes to itself;
- payloads are slices of the received bytes, never decoded or copied again here.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Final, NamedTuple

from ..errors import ChecksumMismatch, MalformedFrame, MessageTooLarge, UnsupportedVersion

__all__ = [
    "FRAME_HEADER_SIZE",
    "MAGIC",
    "MAX_SEQUENCE",
    "NO_DEADLINE",
    "NO_FRAME",
    "PACKET_HEADER_SIZE",
    "SEALED",
    "WIRE_VERSION",
    "Frame",
    "FrameKind",
    "Packet",
    "PacketWriter",
    "decode_frames",
    "decode_frames_compact",
    "decode_packet",
    "decode_packet_compact",
    "decode_packet_fields",
    "encode_frame",
    "encode_lone_packet",
    "encode_packet",
    "expand_repeats",
    "frame_is_compressed",
    "is_sealed",
    "messages_in_frames",
    "peek_header",
    "with_payload",
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

_HEADER_WORDS: Final = struct.Struct("!IQQ")  # checksum, incarnation, sequence: bytes 4 to 23
_MAGIC_0: Final = MAGIC[0]
_MAGIC_1: Final = MAGIC[1]
_CHECKSUM_END: Final = 8  # the checksum covers every byte but 4 to 7, where it sits
_COPY_TO_CHECKSUM_BELOW: Final = 4096
# The first 4 covered bytes are always magic, version 1 and flags 0, so their
# CRC is a constant: encoding and verifying start from it.
_HEAD: Final = _VERSIONED_MAGIC + bytes([0])
_HEAD_CRC: Final = zlib.crc32(_HEAD)
_crc32: Final = zlib.crc32
_FRAME_HEADER: Final = struct.Struct("!BBBBBBBBQII")
_FRAME_WORDS: Final = struct.Struct("!QII")  # call id, deadline, payload length: bytes 8 to 23
_MAX_NAME: Final = 0xFF
_MAX_PAYLOAD: Final = 0xFFFFFFFF
# Checked with bytes.translate(None, allowed): whatever survives is not allowed.
_NAME_CHARS: Final = b"abcdefghijklmnopqrstuvwxyz0123456789._-"
_NAME_RULE: Final = "lowercase ASCII letters, digits, '.', '_' and '-'"
_PRINTABLE: Final = bytes(range(0x20, 0x7F))
_PRINTABLE_RULE: Final = "printable ASCII (0x20 to 0x7e)"
# Codec and compressor names repeat in nearly every frame: remember a few valid ones.
_NAME_CACHE_SIZE: Final = 64
_ENCODED_NAMES: Final[dict[str, bytes]] = {"": b""}
_DECODED_NAMES: Final[dict[bytes, str]] = {b"": ""}
# The codec, compressor and target of a frame, keyed by their bytes on the wire:
# frames in one packet (and packets from one peer) mostly repeat them.
_DECODED_ROUTES: Final[dict[bytes, tuple[str, str, str]]] = {}
_ROUTE_CACHE_SIZE: Final = 1024
_PAYLOAD_LENGTH: Final = struct.Struct("!I")
# The decoder builds frames it has already checked, so it skips the named tuple's
# argument handling.
_new_frame: Final = tuple.__new__
_REPEAT_HEAD_SIZE: Final = 20  # a frame's fixed part up to its payload length
_unpack_header_words: Final = _HEADER_WORDS.unpack_from
_unpack_frame_words: Final = _FRAME_WORDS.unpack_from
_pack_frame_words: Final = _FRAME_WORDS.pack
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
_FRAME_TYPE: Final = Frame


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
_CODEC: Final = 1
_COMPRESSOR: Final = 2
_TARGET: Final = 4
_CALL_ID: Final = 8
_DEADLINE: Final = 16
_PAYLOAD: Final = 32
_PART_NAMES: Final = {
    _CODEC: "codec name",
    _COMPRESSOR: "compressor name",
    _TARGET: "target actor name",
    _CALL_ID: "call id",
    _DEADLINE: "deadline",
    _PAYLOAD: "payload",
}
_RULES: Final = {  # kind: (mask, bits within the mask that must be set)
    FrameKind.MESSAGE: (_CODEC | _TARGET | _CALL_ID | _DEADLINE, _CODEC | _TARGET),
    FrameKind.REQUEST: (_CODEC | _TARGET | _CALL_ID, _CODEC | _TARGET | _CALL_ID),
    FrameKind.RESPONSE: (_CODEC | _TARGET | _CALL_ID | _DEADLINE, _CODEC | _CALL_ID),
    FrameKind.ERROR: (_CODEC | _TARGET | _CALL_ID | _DEADLINE, _CODEC | _CALL_ID),
    FrameKind.CANCEL: (63, _CALL_ID),
}
_KINDS: Final[dict[int, tuple[FrameKind, int, int]]] = {
    kind.value: (kind, mask, required) for kind, (mask, required) in _RULES.items()
}
# Decoding indexes this by the kind byte and gets the kind and its rule together
# (None for an unknown kind): no hashing per frame.
_KIND_BY_BYTE: Final[tuple[tuple[FrameKind, int, int] | None, ...]] = tuple(
    _KINDS.get(byte) for byte in range(256)
)


def _shape(frame: Frame) -> int:
    return (
        (_CODEC if frame.codec else 0)
        | (_COMPRESSOR if frame.compressor else 0)
        | (_TARGET if frame.target else 0)
        | (_CALL_ID if frame.call_id else 0)
        | (_DEADLINE if frame.deadline_ms is not None else 0)
        | (_PAYLOAD if frame.payload else 0)
    )


def _rule_violation(kind: FrameKind, shape: int) -> str:
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
        raise MalformedFrame(f"cannot encode the frame: {_rule_violation(kind, shape)}")
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
        raw = _ascii_field(value, _NAME_CHARS, what, _NAME_RULE)
        if len(_ENCODED_NAMES) < _NAME_CACHE_SIZE:
            _ENCODED_NAMES[value] = raw
    return raw


def _printable_field(value: str, what: str) -> bytes:
    if not value:
        return b""
    # A request id (ASCII letters and digits) passes on two checks the compiled
    # build makes without a method call; str.isalnum alone would admit any script.
    if value.isalnum():
        try:
            return _checked_length(value.encode("ascii"), what)
        except UnicodeEncodeError:
            pass
    # Together these admit exactly 0x20 to 0x7e, and cost half the table check.
    if value.isascii() and value.isprintable():
        return _checked_length(value.encode("ascii"), what)
    return _ascii_field(value, _PRINTABLE, what, _PRINTABLE_RULE)


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
        self._crc_through_incarnation = _crc32(self._incarnation_field, _HEAD_CRC)

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


def peek_header(data: bytes) -> tuple[int, int]:
    """Return ``(incarnation, sequence)`` of a packet without decoding its frames.

    The checksum is verified here, so the pair is safe to show a duplicate window.
    Raise :class:`MalformedFrame` for a short or foreign packet or reserved flags,
    :class:`UnsupportedVersion` for our magic with another version, and
    :class:`ChecksumMismatch` for a packet whose bytes do not match its checksum.
    """
    if len(data) < PACKET_HEADER_SIZE:
        raise MalformedFrame(
            f"packet of {len(data)} bytes is shorter than its {PACKET_HEADER_SIZE}-byte header"
        )
    # Single bytes by index and the words by one unpack: the whole header through
    # struct would allocate the magic and a six-item tuple per packet.
    version, flags = data[2], data[3]
    if data[0] != _MAGIC_0 or data[1] != _MAGIC_1:
        raise MalformedFrame(
            f"packet does not start with the magic 4e52 ('NR'): it starts {data[:2].hex()}"
        )
    if version != WIRE_VERSION:
        raise UnsupportedVersion(
            f"packet is wire version {version}; this node speaks {WIRE_VERSION}"
        )
    if flags:
        raise MalformedFrame(f"packet flags are {flags:#04x}; every flag is reserved and must be 0")
    words: tuple[int, int, int] = _unpack_header_words(data, 4)
    checksum, incarnation, sequence = words
    _verify_checksum(data, checksum)
    if not incarnation:
        raise MalformedFrame("sender incarnation 0 is not allowed")
    if not sequence:
        raise MalformedFrame("sequence number 0 is not allowed; sequences start at 1")
    return incarnation, sequence


def _verify_checksum(data: bytes, stated: int) -> None:
    """Raise :class:`ChecksumMismatch` unless ``stated`` is the CRC-32 of the covered bytes.

    Called only once bytes 0 to 3 are known to equal ``_HEAD``, whose CRC is precomputed.
    A large packet is read through a memoryview; copying a small one costs less
    than making the view (measured: below about 4 KiB).
    """
    covered = (data[_CHECKSUM_END:] if len(data) < _COPY_TO_CHECKSUM_BELOW
               else memoryview(data)[_CHECKSUM_END:])
    actual = _crc32(covered, _HEAD_CRC)
    if actual != stated:
        raise ChecksumMismatch(
            f"packet checksum {stated:#010x} does not match its contents {actual:#010x}: "
            "damaged in transit"
        )


def decode_packet(data: bytes) -> Packet:
    """Return the packet ``data`` holds; raise :class:`MalformedFrame` for anything else."""
    return _new_frame(Packet, decode_packet_fields(data))


def decode_packet_fields(data: bytes) -> tuple[int, int, tuple[Frame, ...]]:
    """:func:`decode_packet`'s fields as a plain tuple."""
    incarnation, sequence, items = decode_packet_compact(data)
    return incarnation, sequence, tuple(expand_repeats(items))


def decode_packet_compact(data: bytes) -> tuple[int, int, tuple[Frame | bytes, ...]]:
    """:func:`decode_packet_fields`, but a frame that repeats the one before it in all
    but its payload comes as that payload alone (see :func:`expand_repeats`).

    What a receiver uses: a burst of messages to one actor then costs a slice per
    message instead of a frame, and is routed once. Compiled, the returned tuple
    is never built as an object.
    """
    if type(data) is not bytes:  # names are looked up by value and payloads must hash
        data = bytes(data)
    incarnation, sequence = peek_header(data)
    return incarnation, sequence, _decode_frames(data, PACKET_HEADER_SIZE)


def decode_frames(body: bytes) -> tuple[Frame, ...]:
    """The frames of a packet body (what follows the header; a sealed packet's plaintext).

    Whole or nothing: one bad frame makes the body :class:`MalformedFrame`.
    """
    return tuple(expand_repeats(decode_frames_compact(body)))


def decode_frames_compact(body: bytes) -> tuple[Frame | bytes, ...]:
    """:func:`decode_frames`, with repeats as their payloads, as :func:`decode_packet_compact`."""
    if type(body) is not bytes:
        body = bytes(body)
    return _decode_frames(body, 0)


def expand_repeats(items: Iterable[Frame | bytes], previous: Frame = NO_FRAME) -> Iterator[Frame]:
    """The frames that compactly decoded ``items`` stand for: each payload becomes
    a copy of the frame before it (``previous`` for a leading one) with that payload."""
    for item in items:
        previous = item if isinstance(item, Frame) else with_payload(previous, item)
        yield previous


def messages_in_frames(items: Iterable[Frame | bytes]) -> int:
    """How many messages (messages, requests, replies) compactly decoded ``items`` carry:
    every frame but a cancel, and every repeat (only a frame with a payload repeats)."""
    return sum(1 for item in items if not isinstance(item, Frame) or item.kind != FrameKind.CANCEL)


def frame_is_compressed(frame: bytes) -> bool:
    """Whether an encoded frame names a compressor (byte 3 of its header is the length of
    the compressor's name)."""
    return len(frame) > 3 and frame[3] != 0


def with_payload(frame: Frame, payload: bytes) -> Frame:
    """``frame`` with another payload: the frame a repeat's payload stands for."""
    kind, codec, _, compressor, target, call_id, deadline, request_id, parent = frame
    return _new_frame(_FRAME_TYPE, (kind, codec, payload, compressor, target, call_id, deadline,
                                    request_id, parent))


def _decode_frames(data: bytes, offset: int) -> tuple[Frame | bytes, ...]:
    frames: list[Frame | bytes] = []
    end = len(data)
    # A burst to one actor repeats all but the payload. A frame whose fixed part
    # (less the payload length) and names equal the previous frame's has passed
    # the same checks, except whether its payload fits and whether it is empty:
    # it is kept as its payload alone.
    head = previous_head = previous_names = b""
    previous = NO_FRAME
    previous_has_payload = False
    while offset < end:
        if frames:
            head = data[offset : offset + _REPEAT_HEAD_SIZE]
            if head == previous_head and offset + FRAME_HEADER_SIZE <= end:
                start = offset + FRAME_HEADER_SIZE
                payload_start = start + len(previous_names)
                # The u32 payload length by its bytes: native arithmetic when compiled.
                size = ((data[start - 4] << 24) | (data[start - 3] << 16)
                        | (data[start - 2] << 8) | data[start - 1])
                if (payload_start + size <= end and (size > 0) is previous_has_payload
                        and data[start:payload_start] == previous_names):
                    offset = payload_start + size
                    frames.append(data[payload_start:offset])
                    continue
        try:
            previous, next_offset = _decode_frame(data, offset)
        except MalformedFrame as error:
            where = f"frame {len(frames) + 1} (at byte {offset})"
            raise MalformedFrame(f"{where}: {error}") from None
        if not frames:
            if next_offset == end:  # a lone frame (a request, a reply): nothing to compare
                return (previous,)
            head = data[offset : offset + _REPEAT_HEAD_SIZE]
        frames.append(previous)
        previous_head = head
        previous_has_payload = len(previous[2]) > 0
        previous_names = data[offset + FRAME_HEADER_SIZE : next_offset - len(previous[2])]
        offset = next_offset
    if not frames:
        raise MalformedFrame("packet has a header but no frame")
    return tuple(frames)


def _decode_frame(data: bytes, offset: int) -> tuple[Frame, int]:
    """Decode the frame at ``offset``; return it and the offset just past it."""
    remaining = len(data) - offset - FRAME_HEADER_SIZE
    if remaining < 0:
        raise MalformedFrame(f"needs a 24-byte fixed part but {remaining + 24} bytes remain")
    # Typed, so the compiled build does its arithmetic and slicing on machine ints.
    # The eight single bytes by index (no objects made), the three words by one unpack.
    kind_byte, flags, lc, lz = data[offset], data[offset + 1], data[offset + 2], data[offset + 3]
    lt, lr, lp, reserved = data[offset + 4], data[offset + 5], data[offset + 6], data[offset + 7]
    words: tuple[int, int, int] = _unpack_frame_words(data, offset + 8)
    call_id, deadline, size = words
    entry = _KIND_BY_BYTE[kind_byte]
    if entry is None:
        raise MalformedFrame(f"kind {kind_byte} is unknown; kinds are 1 to 5")
    if flags or reserved:
        raise MalformedFrame(f"reserved bytes 1 and 7 are {flags:#04x}, {reserved:#04x}; must be 0")
    names = lc + lz + lt + lr + lp
    if names + size > remaining:
        raise MalformedFrame(_overrun(names, size, remaining))
    kind, mask, required = entry
    shape = (
        (_CODEC if lc else 0) | (_COMPRESSOR if lz else 0) | (_TARGET if lt else 0)
        | (_CALL_ID if call_id else 0) | (_DEADLINE if deadline != NO_DEADLINE else 0)
        | (_PAYLOAD if size else 0)
    )  # fmt: skip
    if shape & mask != required:
        raise MalformedFrame(_rule_violation(kind, shape))
    a = offset + FRAME_HEADER_SIZE + lc
    b = a + lz
    c = b + lt
    d = c + lr
    e = d + lp
    names_key = data[a - lc : c]
    route = _DECODED_ROUTES.get(names_key)
    # Codec and compressor names are ASCII, so their lengths tell whether the
    # cached route split these bytes where this frame does.
    if route is None or len(route[0]) != lc or len(route[1]) != lz:
        cached = route is None
        route = _decode_route(data, a - lc, a, b, c)
        if cached and len(_DECODED_ROUTES) < _ROUTE_CACHE_SIZE:
            _DECODED_ROUTES[names_key] = route
    codec, compressor, target = route
    frame = _new_frame(_FRAME_TYPE, (
        kind, codec, data[e : e + size], compressor, target,
        call_id, None if deadline == NO_DEADLINE else deadline,
        _printable(data[c:d], "request id") if lr else "",
        _printable(data[d:e], "trace parent") if lp else "",
    ))  # fmt: skip
    return frame, e + size


def _decode_route(data: bytes, start: int, a: int, b: int, c: int) -> tuple[str, str, str]:
    """The codec, compressor and target names at those offsets, each checked."""
    codec = _name(data[start:a], "codec name")
    compressor = _name(data[a:b], "compressor name")
    return codec, compressor, _utf8(data[b:c]) if c > b else ""


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
        parent = _printable_field(traceparent, "trace parent")
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


def _overrun(names: int, size: int, remaining: int) -> str:
    if names > remaining:
        return f"declares {names} bytes of names but {remaining} remain"
    return f"declares a payload of {size} bytes but {remaining - names} remain"


def _name(raw: bytes, what: str) -> str:
    name = _DECODED_NAMES.get(raw)
    if name is None:
        name = _ascii(raw, _NAME_CHARS, what, _NAME_RULE)
        if len(_DECODED_NAMES) < _NAME_CACHE_SIZE:
            _DECODED_NAMES[raw] = name
    return name


def _printable(raw: bytes, what: str) -> str:
    try:  # a request id: ASCII letters and digits, checked without a method call when compiled
        text = raw.decode("ascii")
        if text.isalnum():
            return text
    except UnicodeDecodeError:
        pass
    text = raw.decode("latin-1")  # any byte decodes; the test below refuses all but 0x20-0x7e
    if text.isascii() and text.isprintable():
        return text
    raise MalformedFrame(f"{what} {raw!r} may only hold {_PRINTABLE_RULE}")


def _ascii(raw: bytes, allowed: bytes, what: str, rule: str) -> str:
    if raw.translate(None, allowed):
        raise MalformedFrame(f"{what} {raw!r} may only hold {rule}")
    return raw.decode("ascii")


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedFrame(f"target actor name {raw!r} is not UTF-8: {error.reason}") from None
