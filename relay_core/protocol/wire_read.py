"""Wire format v1, read: packets and frames decoded from bytes, without any I/O.

relay_core.protocol.wire defines the format (docs/protocol.md describes every byte)
and writes it; this module reads it, by the same per-kind rules. The rules it keeps:

- decoding accepts a packet whole or rejects it whole, and on any input raises
  nothing but :class:`MalformedFrame` (:class:`UnsupportedVersion` for a packet
  of another wire version, :class:`ChecksumMismatch` for a damaged one);
- the checksum is verified before the incarnation, the sequence number or any
  frame is read, so a damaged sequence number never reaches the duplicate window;
- whatever :func:`~relay_core.protocol.wire.encode_frame` accepts,
  :func:`decode_packet` returns equal, and every accepted packet re-encodes to itself;
- payloads are slices of the received bytes, never decoded or copied again here.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from typing import Final

from ..errors import ChecksumMismatch, MalformedFrame, UnsupportedVersion
from .wire import (
    FRAME_HEADER_SIZE,
    FRAME_WORDS,
    HAS_CALL_ID,
    HAS_CODEC,
    HAS_COMPRESSOR,
    HAS_DEADLINE,
    HAS_PAYLOAD,
    HAS_TARGET,
    HEAD_CRC,
    KIND_BY_BYTE,
    MAGIC,
    NAME_CHARS,
    NAME_RULE,
    NO_DEADLINE,
    NO_FRAME,
    PACKET_HEADER_SIZE,
    PRINTABLE_RULE,
    WIRE_VERSION,
    Frame,
    FrameKind,
    Packet,
    rule_violation,
)

__all__ = [
    "decode_frames",
    "decode_frames_compact",
    "decode_packet",
    "decode_packet_compact",
    "decode_packet_fields",
    "expand_repeats",
    "messages_in_frames",
    "peek_header",
    "with_payload",
]

_HEADER_WORDS: Final = struct.Struct("!IQQ")  # checksum, incarnation, sequence: bytes 4 to 23
_MAGIC_0: Final = MAGIC[0]
_MAGIC_1: Final = MAGIC[1]
_CHECKSUM_END: Final = 8  # the checksum covers every byte but 4 to 7, where it sits
_COPY_TO_CHECKSUM_BELOW: Final = 4096
# Codec and compressor names repeat in nearly every frame: remember a few valid ones.
_NAME_CACHE_SIZE: Final = 64
_DECODED_NAMES: Final[dict[bytes, str]] = {b"": ""}
# The codec, compressor and target of a frame, keyed by their bytes on the wire:
# frames in one packet (and packets from one peer) mostly repeat them.
_DECODED_ROUTES: Final[dict[bytes, tuple[str, str, str]]] = {}
_ROUTE_CACHE_SIZE: Final = 1024
# The decoder builds frames it has already checked, so it skips the named tuple's
# argument handling.
_new_frame: Final = tuple.__new__
_REPEAT_HEAD_SIZE: Final = 20  # a frame's fixed part up to its payload length
_unpack_header_words: Final = _HEADER_WORDS.unpack_from
_unpack_frame_words: Final = FRAME_WORDS.unpack_from
_crc32: Final = zlib.crc32
_FRAME_TYPE: Final = Frame


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

    Called only once bytes 0 to 3 are known to be magic, version 1 and flags 0, whose
    CRC (:data:`~relay_core.protocol.wire.HEAD_CRC`) is precomputed.
    A large packet is read through a memoryview; copying a small one costs less
    than making the view (measured: below about 4 KiB).
    """
    covered = (data[_CHECKSUM_END:] if len(data) < _COPY_TO_CHECKSUM_BELOW
               else memoryview(data)[_CHECKSUM_END:])
    actual = _crc32(covered, HEAD_CRC)
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
    entry = KIND_BY_BYTE[kind_byte]
    if entry is None:
        raise MalformedFrame(f"kind {kind_byte} is unknown; kinds are 1 to 5")
    if flags or reserved:
        raise MalformedFrame(f"reserved bytes 1 and 7 are {flags:#04x}, {reserved:#04x}; must be 0")
    names = lc + lz + lt + lr + lp
    if names + size > remaining:
        raise MalformedFrame(_overrun(names, size, remaining))
    kind, mask, required = entry
    shape = (
        (HAS_CODEC if lc else 0) | (HAS_COMPRESSOR if lz else 0) | (HAS_TARGET if lt else 0)
        | (HAS_CALL_ID if call_id else 0) | (HAS_DEADLINE if deadline != NO_DEADLINE else 0)
        | (HAS_PAYLOAD if size else 0)
    )  # fmt: skip
    if shape & mask != required:
        raise MalformedFrame(rule_violation(kind, shape))
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


def _overrun(names: int, size: int, remaining: int) -> str:
    if names > remaining:
        return f"declares {names} bytes of names but {remaining} remain"
    return f"declares a payload of {size} bytes but {remaining - names} remain"


def _name(raw: bytes, what: str) -> str:
    name = _DECODED_NAMES.get(raw)
    if name is None:
        name = _ascii(raw, NAME_CHARS, what, NAME_RULE)
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
    raise MalformedFrame(f"{what} {raw!r} may only hold {PRINTABLE_RULE}")


def _ascii(raw: bytes, allowed: bytes, what: str, rule: str) -> str:
    if raw.translate(None, allowed):
        raise MalformedFrame(f"{what} {raw!r} may only hold {rule}")
    return raw.decode("ascii")


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedFrame(f"target actor name {raw!r} is not UTF-8: {error.reason}") from None
