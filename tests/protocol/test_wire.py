"""Wire format v1: what encoding produces, what decoding accepts, and what it refuses.

The fixed parts and the checksum are packed here independently of
relay_core.protocol.wire, straight from the tables in docs/protocol.md, so a layout
mistake cannot hide in both places.
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from relay_core import ChecksumMismatch, MalformedFrame, MessageTooLarge, UnsupportedVersion
from relay_core.protocol.wire import (
    FRAME_HEADER_SIZE,
    NO_DEADLINE,
    PACKET_HEADER_SIZE,
    WIRE_VERSION,
    Frame,
    FrameKind,
    Packet,
    encode_frame,
    encode_lone_packet,
    encode_packet,
)
from relay_core.protocol.wire_read import decode_packet, peek_header

RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
U64 = 2**64 - 1
NAME = b"msgpack"
GREETER = b"greeter"
ADA = bytes.fromhex("81a46e616d65a3616461")  # msgpack of {"name": "ada"}


def pack_header(
    incarnation: int = 1, sequence: int = 1, version: int = 1, flags: int = 0, checksum: int = 0
) -> bytes:
    return b"NR" + bytes([version, flags]) + struct.pack("!IQQ", checksum, incarnation, sequence)


def seal(packet: bytes) -> bytes:
    """Give ``packet`` the checksum its bytes call for, whatever else is wrong with them.

    Fuzz tests reseal what they damage, so the frame checks behind the checksum
    stay fuzzed too.
    """
    assert len(packet) >= 8, "no room for a checksum"
    covered = packet[:4] + packet[8:]
    return packet[:4] + struct.pack("!I", zlib.crc32(covered)) + packet[8:]


def sealed(*parts: bytes) -> bytes:
    return seal(b"".join(parts))


def flip(packet: bytes, bits: list[int]) -> bytes:
    damaged = bytearray(packet)
    for bit in bits:
        damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


def pack_frame(
    kind: int,
    codec: bytes = b"",
    compressor: bytes = b"",
    target: bytes = b"",
    request_id: bytes = b"",
    traceparent: bytes = b"",
    call_id: int = 0,
    deadline: int = NO_DEADLINE,
    payload: bytes = b"",
    flags: int = 0,
    reserved: int = 0,
) -> bytes:
    names = (codec, compressor, target, request_id, traceparent)
    lengths = bytes([kind, flags, *map(len, names), reserved])
    fixed = lengths + struct.pack("!QII", call_id, deadline, len(payload))
    return fixed + b"".join(names) + payload


def message_bytes(**changes: Any) -> bytes:
    fields: dict[str, Any] = {"codec": NAME, "target": GREETER, "payload": ADA, **changes}
    return pack_frame(FrameKind.MESSAGE, **fields)


NAME_TEXT = st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=255)
PRINTABLE_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=255)
TARGET_TEXT = st.text(min_size=1, max_size=63)  # at most 4 UTF-8 bytes a character
CALL_IDS = st.integers(1, U64)
PAYLOADS = st.binary(max_size=300)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    """Any frame the per-kind rules allow."""
    kind = draw(st.sampled_from(FrameKind))
    request_id, traceparent = draw(PRINTABLE_TEXT), draw(PRINTABLE_TEXT)
    if kind is FrameKind.CANCEL:
        return Frame(kind, "", b"", "", "", draw(CALL_IDS), None, request_id, traceparent)
    codec, compressor = draw(NAME_TEXT), draw(st.just("") | NAME_TEXT)
    if kind is FrameKind.MESSAGE:
        target, call_id, deadline = draw(TARGET_TEXT), 0, None
    elif kind is FrameKind.REQUEST:
        deadlines = st.none() | st.integers(0, NO_DEADLINE - 1)
        target, call_id, deadline = draw(TARGET_TEXT), draw(CALL_IDS), draw(deadlines)
    else:
        target, call_id, deadline = "", draw(CALL_IDS), None
    payload = draw(PAYLOADS)
    return Frame(
        kind, codec, payload, compressor, target, call_id, deadline, request_id, traceparent
    )


INCARNATIONS = st.integers(1, U64)
SEQUENCES = st.integers(1, U64)
FRAME_LISTS = st.lists(frames(), min_size=1, max_size=5)


# --- round trips --------------------------------------------------------------------


@RELAXED
@given(INCARNATIONS, SEQUENCES, FRAME_LISTS)
def test_any_valid_packet_decodes_to_what_was_encoded(
    incarnation: int, sequence: int, frame_list: list[Frame]
) -> None:
    data = encode_packet(incarnation, sequence, [encode_frame(f) for f in frame_list])
    assert decode_packet(data) == Packet(incarnation, sequence, tuple(frame_list))


@RELAXED
@given(frames())
def test_decoded_frames_are_equal_hashable_and_frozen_like_constructed_ones(frame: Frame) -> None:
    (decoded,) = decode_packet(encode_packet(1, 1, [encode_frame(frame)])).frames
    assert hash(decoded) == hash(frame)
    assert type(decoded.payload) is bytes
    with pytest.raises(AttributeError):
        decoded.codec = "json"  # type: ignore[misc]


@RELAXED
@given(frames())
def test_encoding_follows_the_documented_layout(frame: Frame) -> None:
    deadline = NO_DEADLINE if frame.deadline_ms is None else frame.deadline_ms
    expected = pack_frame(
        frame.kind, frame.codec.encode(), frame.compressor.encode(), frame.target.encode(),
        frame.request_id.encode(), frame.traceparent.encode(), frame.call_id, deadline,
        frame.payload,
    )  # fmt: skip
    assert encode_frame(frame) == expected


@RELAXED
@given(INCARNATIONS, SEQUENCES)
def test_packet_header_is_magic_version_flags_checksum_incarnation_sequence(
    incarnation: int, sequence: int
) -> None:
    frame = encode_frame(Frame(FrameKind.CANCEL, "", b"", call_id=1))
    data = encode_packet(incarnation, sequence, [frame])
    assert data == sealed(pack_header(incarnation, sequence), frame)
    assert len(data) - len(frame) == PACKET_HEADER_SIZE
    assert peek_header(data) == (incarnation, sequence)


def test_peek_header_checks_the_checksum_but_does_not_decode_the_frames() -> None:
    assert peek_header(sealed(pack_header(5, 6), b"\xff" * 3)) == (5, 6)
    with pytest.raises(ChecksumMismatch):
        peek_header(pack_header(5, 6) + b"\xff" * 3)


def test_constants_match_the_documented_sizes() -> None:
    assert (PACKET_HEADER_SIZE, FRAME_HEADER_SIZE, WIRE_VERSION) == (24, 24, 1)
    assert NO_DEADLINE == 0xFFFFFFFF


@RELAXED
@given(st.binary(max_size=200))
def test_a_request_with_no_deadline_carries_all_ones(payload: bytes) -> None:
    frame = Frame(FrameKind.REQUEST, "json", payload, target="a", call_id=1)
    assert encode_frame(frame)[16:20] == b"\xff\xff\xff\xff"


# --- the per-kind rules, in both directions -----------------------------------------

VALID: dict[FrameKind, dict[str, Any]] = {
    FrameKind.MESSAGE: {"codec": "msgpack", "target": "greeter", "payload": ADA},
    FrameKind.REQUEST: {"codec": "msgpack", "target": "greeter", "payload": ADA, "call_id": 7},
    FrameKind.RESPONSE: {"codec": "msgpack", "payload": ADA, "call_id": 7},
    FrameKind.ERROR: {"codec": "json", "payload": b"{}", "call_id": 7},
    FrameKind.CANCEL: {"codec": "", "payload": b"", "call_id": 7},
}
BROKEN_RULES = [  # kind, a change that breaks one of its rules, what the error must name
    (FrameKind.MESSAGE, {"target": ""}, "lacks a target actor name"),
    (FrameKind.MESSAGE, {"codec": ""}, "lacks a codec name"),
    (FrameKind.MESSAGE, {"call_id": 9}, "has a call id"),
    (FrameKind.MESSAGE, {"deadline_ms": 100}, "has a deadline"),
    (FrameKind.REQUEST, {"call_id": 0}, "lacks a call id"),
    (FrameKind.REQUEST, {"target": ""}, "lacks a target actor name"),
    (FrameKind.REQUEST, {"codec": ""}, "lacks a codec name"),
    (FrameKind.RESPONSE, {"target": "greeter"}, "has a target actor name"),
    (FrameKind.RESPONSE, {"call_id": 0}, "lacks a call id"),
    (FrameKind.RESPONSE, {"deadline_ms": 0}, "has a deadline"),
    (FrameKind.ERROR, {"codec": ""}, "lacks a codec name"),
    (FrameKind.ERROR, {"target": "greeter"}, "has a target actor name"),
    (FrameKind.CANCEL, {"codec": "json"}, "has a codec name"),
    (FrameKind.CANCEL, {"compressor": "zstd"}, "has a compressor name"),
    (FrameKind.CANCEL, {"target": "greeter"}, "has a target actor name"),
    (FrameKind.CANCEL, {"payload": b"x"}, "has a payload"),
    (FrameKind.CANCEL, {"call_id": 0}, "lacks a call id"),
    (FrameKind.CANCEL, {"deadline_ms": 5}, "has a deadline"),
]


def frame_of(kind: FrameKind, **changes: Any) -> Frame:
    return Frame(kind, **{**VALID[kind], **changes})


def raw_frame_of(frame: Frame) -> bytes:
    """Pack a frame as the layout says, whatever the rules say."""
    return pack_frame(
        frame.kind, frame.codec.encode(), frame.compressor.encode(), frame.target.encode(),
        call_id=frame.call_id, payload=frame.payload,
        deadline=NO_DEADLINE if frame.deadline_ms is None else frame.deadline_ms,
    )  # fmt: skip


@pytest.mark.parametrize("kind", list(FrameKind))
def test_each_kind_has_a_valid_shape(kind: FrameKind) -> None:
    frame = frame_of(kind)
    assert decode_packet(sealed(pack_header(), encode_frame(frame))).frames == (frame,)


@pytest.mark.parametrize(("kind", "change", "problem"), BROKEN_RULES)
def test_encoding_refuses_a_frame_that_breaks_its_kinds_rules(
    kind: FrameKind, change: dict[str, Any], problem: str
) -> None:
    with pytest.raises(MalformedFrame, match=f"this {kind.name} {problem}.*a {kind.name} needs"):
        encode_frame(frame_of(kind, **change))


@pytest.mark.parametrize(("kind", "change", "problem"), BROKEN_RULES)
def test_decoding_refuses_a_frame_that_breaks_its_kinds_rules(
    kind: FrameKind, change: dict[str, Any], problem: str
) -> None:
    data = sealed(pack_header(), raw_frame_of(frame_of(kind, **change)))
    with pytest.raises(MalformedFrame, match=f"frame 1 .*this {kind.name} {problem}"):
        decode_packet(data)


def test_the_rule_message_lists_every_problem_and_the_rule() -> None:
    frame = Frame(FrameKind.CANCEL, "json", b"x", target="a", call_id=0)
    expected = (
        "this CANCEL lacks a call id and has a codec name, a target actor name or a payload; "
        "a CANCEL needs a call id and may not have a codec name, a compressor name, "
        "a target actor name, a deadline or a payload"
    )
    with pytest.raises(MalformedFrame, match=expected):
        encode_frame(frame)


def test_request_id_and_trace_parent_may_ride_on_every_kind() -> None:
    for kind in FrameKind:
        frame = frame_of(kind, request_id="req 1", traceparent="00-ab-cd-01")
        assert decode_packet(sealed(pack_header(), encode_frame(frame))).frames == (frame,)


# --- what encoding refuses ----------------------------------------------------------

BAD_VALUES = [
    ({"codec": "MsgPack"}, "codec name 'MsgPack' may only hold lowercase ASCII letters"),
    ({"codec": "msg pack"}, "codec name"),
    ({"codec": "msgpäck"}, "codec name"),
    ({"compressor": "zstd\n"}, "compressor name"),
    ({"request_id": "line\nbreak"}, r"request id .* printable ASCII \(0x20 to 0x7e\)"),
    ({"request_id": "café"}, "request id"),
    ({"traceparent": "\x7f"}, "trace parent"),
    ({"target": "\udc80"}, "target actor name .* is not valid Unicode"),
    ({"call_id": -1}, r"call id -1 is outside 0 to 2\*\*64-1"),
    ({"call_id": 2**64}, "call id"),
    ({"deadline_ms": -1}, "deadline of -1 ms is outside 0 to 4294967294"),
    ({"deadline_ms": NO_DEADLINE}, "deadline"),
    ({"kind": 9}, "frame kind 9 is not one of 1 to 5"),
]


@pytest.mark.parametrize(("change", "message"), BAD_VALUES)
def test_encoding_refuses_values_outside_the_format(change: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {
        "kind": FrameKind.REQUEST, **VALID[FrameKind.REQUEST], **change
    }  # fmt: skip
    with pytest.raises(MalformedFrame, match=message):
        encode_frame(Frame(**fields))


@pytest.mark.parametrize("field", ["codec", "compressor", "request_id", "traceparent", "target"])
def test_encoding_refuses_a_name_longer_than_its_length_byte(field: str) -> None:
    frame = frame_of(FrameKind.REQUEST, **{field: "a" * 256})
    with pytest.raises(MessageTooLarge, match="256 bytes exceeds the limit of 255") as caught:
        encode_frame(frame)
    assert (caught.value.size, caught.value.limit) == (256, 255)


def test_a_name_of_255_bytes_fits() -> None:
    frame = frame_of(FrameKind.REQUEST, target="é" * 127 + "a")  # 255 UTF-8 bytes
    assert decode_packet(sealed(pack_header(), encode_frame(frame))).frames == (frame,)


def test_encoding_refuses_a_payload_longer_than_a_u32() -> None:
    huge = bytes(2**32)  # zero-filled by calloc: the 4 GiB are never touched, so never resident
    with pytest.raises(MessageTooLarge, match="payload length is a u32"):
        encode_frame(frame_of(FrameKind.MESSAGE, payload=huge))


@pytest.mark.parametrize(
    ("incarnation", "sequence", "message"),
    [
        (0, 1, "incarnation 0 is outside 1 to 2"),
        (2**64, 1, "incarnation"),
        (1, 0, "sequence number 0 is outside 1 to 2"),
        (1, 2**64, "sequence number"),
    ],
)
def test_packets_need_an_incarnation_and_sequence_in_the_u64_range(
    incarnation: int, sequence: int, message: str
) -> None:
    with pytest.raises(MalformedFrame, match=message):
        encode_packet(incarnation, sequence, [encode_frame(frame_of(FrameKind.CANCEL))])


@RELAXED
@given(INCARNATIONS, SEQUENCES, frames())
def test_a_lone_frames_packet_is_the_packet_of_a_one_frame_list(
    incarnation: int, sequence: int, frame: Frame
) -> None:
    encoded = encode_frame(frame)
    assert encode_lone_packet(incarnation, sequence, encoded) == encode_packet(
        incarnation, sequence, [encoded]
    )


@pytest.mark.parametrize(("incarnation", "sequence"), [(0, 1), (2**64, 1), (1, 0), (1, 2**64)])
def test_a_lone_frames_packet_checks_its_identity_too(incarnation: int, sequence: int) -> None:
    with pytest.raises(MalformedFrame, match="is outside 1 to 2"):
        encode_lone_packet(incarnation, sequence, encode_frame(frame_of(FrameKind.CANCEL)))


def test_a_packet_carries_at_least_one_frame() -> None:
    with pytest.raises(MalformedFrame, match="at least one frame"):
        encode_packet(1, 1, [])


# --- what decoding refuses ----------------------------------------------------------

REJECTED = [
    pytest.param(b"", "packet of 0 bytes is shorter than its 24-byte header", id="empty"),
    pytest.param(
        b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n",
        "does not start with the magic 4e52 \\('NR'\\): it starts 4854",
        id="foreign",
    ),
    pytest.param(b"NR\x01", "packet of 3 bytes is shorter than its 24-byte header", id="short"),
    pytest.param(
        sealed(pack_header())[:23],
        "packet of 23 bytes is shorter than its 24-byte header",
        id="short-header",
    ),
    pytest.param(
        sealed(pack_header(flags=1), message_bytes()),
        "packet flags are 0x01; every flag is reserved",
        id="packet-flags",
    ),
    pytest.param(
        sealed(pack_header(incarnation=0), message_bytes()),
        "incarnation 0 is not allowed",
        id="incarnation-0",
    ),
    pytest.param(
        sealed(pack_header(sequence=0), message_bytes()),
        "sequence number 0 is not allowed",
        id="sequence-0",
    ),
    pytest.param(sealed(pack_header()), "packet has a header but no frame", id="no-frame"),
    pytest.param(
        sealed(pack_header(), message_bytes()[:23]),
        "frame 1 .*needs a 24-byte fixed part but 23 bytes",
        id="short-fixed-part",
    ),
    pytest.param(
        sealed(pack_header(), message_bytes() + b"\x00"),
        "frame 2 \\(at byte 72\\): needs a 24-byte",
        id="trailing-byte",
    ),
    pytest.param(
        sealed(pack_header(), pack_frame(0)),
        "frame 1 .*kind 0 is unknown; kinds are 1 to 5",
        id="kind-0",
    ),
    pytest.param(sealed(pack_header(), pack_frame(6)), "kind 6 is unknown", id="kind-6"),
    pytest.param(
        sealed(pack_header(), message_bytes(flags=0x80)),
        "reserved bytes 1 and 7 are 0x80, 0x00",
        id="frame-flags",
    ),
    pytest.param(
        sealed(pack_header(), message_bytes(reserved=1)),
        "reserved bytes 1 and 7 are 0x00, 0x01",
        id="reserved-byte",
    ),
    pytest.param(
        sealed(pack_header(), message_bytes()[:-1]),
        "declares a payload of 10 bytes but 9 remain",
        id="payload-overrun",
    ),
    pytest.param(
        sealed(pack_header(), message_bytes()[:30]),
        "declares 14 bytes of names but 6 remain",
        id="names-overrun",
    ),
    pytest.param(
        sealed(pack_header(), message_bytes(codec=b"Msgpack")),
        "codec name b'Msgpack' may only hold",
        id="codec-charset",
    ),
    pytest.param(
        sealed(pack_header(), message_bytes(compressor=b"z\xffd")),
        "compressor name b'z\\\\xffd'",
        id="compressor-charset",
    ),
    pytest.param(
        sealed(pack_header(), message_bytes(target=b"gr\xc3")),
        "target actor name .* is not UTF-8",
        id="target-utf8",
    ),
    pytest.param(
        sealed(pack_header(), message_bytes(request_id=b"a\x00")),
        "request id .* printable ASCII",
        id="request-id-charset",
    ),
    pytest.param(  # a letter in Latin-1 (0xaa is "ª"), not in ASCII
        sealed(pack_header(), message_bytes(request_id=b"req\xaa1")),
        "request id .* printable ASCII",
        id="request-id-latin1-letter",
    ),
    pytest.param(
        sealed(pack_header(), message_bytes(traceparent=b"\x80")),
        "trace parent .* printable ASCII",
        id="traceparent-charset",
    ),
]


@pytest.mark.parametrize(("data", "message"), REJECTED)
def test_decoding_refuses_bytes_that_are_not_a_valid_packet(data: bytes, message: str) -> None:
    with pytest.raises(MalformedFrame, match=message) as caught:
        decode_packet(data)
    assert type(caught.value) is MalformedFrame


def test_the_error_names_the_frame_and_what_remains() -> None:
    second = message_bytes()[:-3] + b""
    data = sealed(
        pack_header(), message_bytes(), second[:20], struct.pack("!I", 4_000_000), second[24:]
    )
    expected = r"^frame 2 \(at byte 72\): declares a payload of 4000000 bytes but 7 remain$"
    with pytest.raises(MalformedFrame, match=expected):
        decode_packet(data)


@pytest.mark.parametrize("version", [0, 2, 255])
def test_our_magic_with_another_version_is_unsupported_whatever_its_checksum(
    version: int,
) -> None:
    # Another version may place or compute its checksum differently, so the
    # version is judged first.
    unsealed = pack_header(version=version) + message_bytes()
    for data in (unsealed, seal(unsealed)):
        with pytest.raises(UnsupportedVersion, match=f"wire version {version}; this node speaks 1"):
            decode_packet(data)
        with pytest.raises(UnsupportedVersion):
            peek_header(data)


@pytest.mark.parametrize(
    "data",
    [b"NR", b"NR\x02", pack_header(version=2)[:23]],
    ids=["magic", "magic-version-2", "version-2-header-less-a-byte"],
)
def test_a_packet_shorter_than_the_header_is_malformed_whatever_its_version(data: bytes) -> None:
    for judge in (decode_packet, peek_header):
        with pytest.raises(MalformedFrame, match="shorter than its 24-byte header") as caught:
            judge(data)
        assert type(caught.value) is MalformedFrame


def test_peek_header_refuses_what_decoding_refuses_in_the_header() -> None:
    for data in (
        b"",
        sealed(b"XX", pack_header()[2:]),
        sealed(pack_header(flags=2)),
        sealed(pack_header(sequence=0)),
        pack_header(),
    ):
        with pytest.raises(MalformedFrame) as caught:
            decode_packet(data)
        with pytest.raises(type(caught.value), match=re.escape(str(caught.value))):
            peek_header(data)


# --- the checksum: damage is caught before any field is trusted ---------------------


@st.composite
def valid_packets(draw: st.DrawFn) -> bytes:
    frame_list = draw(FRAME_LISTS)
    encoded = [encode_frame(frame) for frame in frame_list]
    return encode_packet(draw(INCARNATIONS), draw(SEQUENCES), encoded)


@RELAXED
@given(valid_packets())
def test_the_checksum_is_the_crc32_of_every_byte_but_its_own(packet: bytes) -> None:
    (checksum,) = struct.unpack_from("!I", packet, 4)
    assert checksum == zlib.crc32(packet[:4] + packet[8:])
    assert seal(packet) == packet


def test_a_wrong_checksum_is_reported_with_both_values() -> None:
    data = pack_header(checksum=0x12345678) + message_bytes()
    actual = zlib.crc32(data[:4] + data[8:])
    expected = (
        f"^packet checksum 0x12345678 does not match its contents {actual:#010x}: "
        "damaged in transit$"
    )
    for judge in (decode_packet, peek_header):
        with pytest.raises(ChecksumMismatch, match=expected):
            judge(data)


def test_a_damaged_sequence_number_is_caught_before_it_can_reach_the_window() -> None:
    genuine = encode_packet(7, 1, [message_bytes()])
    damaged = flip(genuine, [16 * 8 + 7])  # the sequence's top bit: 1 would read as 2**63 + 1
    with pytest.raises(ChecksumMismatch):
        peek_header(damaged)


HEADER_BYTE_ERRORS = {
    0: MalformedFrame,
    1: MalformedFrame,
    2: UnsupportedVersion,
    3: MalformedFrame,
}
"""Bytes 0 to 3 hold fixed values, judged before the checksum: magic, version, flags."""


@RELAXED
@given(valid_packets(), st.data())
def test_every_single_flipped_bit_is_caught(packet: bytes, data: st.DataObject) -> None:
    bit = data.draw(st.integers(0, len(packet) * 8 - 1), label="bit")
    expected = HEADER_BYTE_ERRORS.get(bit // 8, ChecksumMismatch)
    damaged = flip(packet, [bit])
    for judge in (decode_packet, peek_header):
        with pytest.raises(MalformedFrame) as caught:
            judge(damaged)
        assert type(caught.value) is expected


@RELAXED
@given(valid_packets(), st.data())
def test_every_run_of_up_to_32_damaged_bits_after_the_checksum_is_caught(
    packet: bytes, data: st.DataObject
) -> None:
    last_bit = len(packet) * 8 - 1
    first = data.draw(st.integers(8 * 8, last_bit), label="first")  # from byte 8 on
    last = data.draw(st.integers(first, min(first + 31, last_bit)), label="last")
    inner = data.draw(st.sets(st.integers(first, last)), label="inner")
    with pytest.raises(ChecksumMismatch):
        decode_packet(flip(packet, sorted({first, last} | inner)))


# --- fuzzing: arbitrary bytes raise MalformedFrame and nothing else ----------------


def decodes_or_is_malformed(data: bytes) -> MalformedFrame | None:
    """Decoding ``data`` either fails cleanly, returning the error, or gives frames
    that re-encode to it."""
    try:
        packet = decode_packet(data)
    except MalformedFrame as error:
        return error
    # The encoding is canonical: anything accepted is exactly what the encoder writes.
    frames = [encode_frame(frame) for frame in packet.frames]
    assert encode_packet(packet.incarnation, packet.sequence, frames) == data
    return None


def resealed_decodes_or_is_malformed(data: bytes) -> None:
    """Like decodes_or_is_malformed, once ``data`` is resealed: the checksum cannot be
    what rejects it, so the checks behind it are exercised."""
    error = decodes_or_is_malformed(seal(data))
    assert not isinstance(error, ChecksumMismatch), error


@RELAXED
@given(st.binary(max_size=400))
def test_random_bytes_never_raise_anything_but_malformed_frame(data: bytes) -> None:
    decodes_or_is_malformed(data)
    decodes_or_is_malformed(pack_header() + data)
    resealed_decodes_or_is_malformed(pack_header() + data)
    try:
        peek_header(data)
    except MalformedFrame:
        pass


@RELAXED
@given(st.data())
def test_random_frame_headers_after_a_valid_packet_header_fail_cleanly(data: st.DataObject) -> None:
    lengths = data.draw(st.lists(st.integers(0, 255), min_size=8, max_size=8))
    call_id, deadline = data.draw(st.integers(0, U64)), data.draw(st.integers(0, 2**32 - 1))
    size = data.draw(st.integers(0, 2**32 - 1))
    rest = data.draw(st.binary(max_size=300))
    fixed = bytes(lengths) + struct.pack("!QII", call_id, deadline, size)
    resealed_decodes_or_is_malformed(pack_header() + fixed + rest)


@RELAXED
@given(valid_packets(), st.data())
def test_flipped_bits_in_a_valid_packet_fail_cleanly(packet: bytes, data: st.DataObject) -> None:
    flips = data.draw(st.lists(st.integers(0, len(packet) * 8 - 1), min_size=1, max_size=4))
    decodes_or_is_malformed(flip(packet, flips))
    resealed_decodes_or_is_malformed(flip(packet, flips))


@RELAXED
@given(valid_packets(), st.data())
def test_truncated_or_extended_packets_fail_cleanly(packet: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(packet) - 1))
    extension = data.draw(st.binary(min_size=1, max_size=64))
    decodes_or_is_malformed(packet[:cut])
    decodes_or_is_malformed(packet + extension)
    if cut >= PACKET_HEADER_SIZE:
        resealed_decodes_or_is_malformed(packet[:cut])
    resealed_decodes_or_is_malformed(packet + extension)


@RELAXED
@given(valid_packets(), st.data())
def test_changed_fixed_part_bytes_fail_cleanly(packet: bytes, data: st.DataObject) -> None:
    offset = PACKET_HEADER_SIZE  # the first frame's fixed part
    mutated = bytearray(packet)
    if data.draw(st.booleans(), label="whole payload length"):
        size = data.draw(st.integers(0, 2**32 - 1))
        mutated[offset + 20 : offset + 24] = struct.pack("!I", size)
    else:
        index = offset + data.draw(st.integers(0, FRAME_HEADER_SIZE - 1))
        mutated[index] = data.draw(st.integers(0, 255))
    assume(bytes(mutated) != packet)
    resealed_decodes_or_is_malformed(bytes(mutated))
