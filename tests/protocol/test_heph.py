"""heph-json, the format of Heph's net relay: datagrams, streams and duplicate uuids.

A Heph node writes ``{"uuid": "<UUID>", "message": <value>}``, one object per
UDP datagram or back to back on a TCP stream. These tests hold decoding to what
Heph's own reader accepts, encoding to what it can read, the stream splitter to
any chunking, and the uuid window to its bound.
"""

from __future__ import annotations

import enum
import gc
import json
import math
import random
import tracemalloc
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay_core import ConfigError, EncodeError, MalformedFrame, UnknownMessage, message
from relay_core.protocol.heph import (
    HephEnvelope,
    UuidWindow,
    decode_datagram,
    encode_bare,
    encode_datagram,
    is_heph_json,
)
from relay_core.protocol.heph_stream import HephStreamSplitter
from relay_core.protocol.seal import HELLO, SEALED, KeyRing, Sealer
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet

INT_MIN, INT_MAX = -(2**63), 2**64 - 1
LIMIT = 1 << 16
SAMPLE_UUID = uuid.UUID("67e55044-10b1-426f-9247-bb680e5fe0c8")
SENDER = ("udp", ("127.0.0.1", 9001))
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@message("test_heph.Point")
@dataclass(frozen=True)
class Point:
    x: float
    y: float = 0.0


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


# Characters that a careless splitter or encoder would trip over, mixed with any others.
tricky_text = st.text(
    st.sampled_from('{}[]"\\/:, \n\tu\u00e9\u2028\U0001f600')
    | st.characters(exclude_categories=["Cs"]),  # no lone surrogates: they are not text
    max_size=12,
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=15,
)
heph_messages = st.builds(HephEnvelope, st.uuids(), json_values)


def heph(message: object, uuid_text: str = str(SAMPLE_UUID)) -> bytes:
    """A heph-json object as another tool would write it (json.dumps, spaces and all)."""
    return json.dumps({"uuid": uuid_text, "message": message}).encode()


def nested(levels: int) -> object:
    value: object = 0
    for _ in range(levels):
        value = [value]
    return value


# --- encoding then decoding -------------------------------------------------------------


@RELAXED
@given(json_values, st.uuids())
def test_any_json_value_round_trips_with_its_uuid(value: object, message_uuid: uuid.UUID) -> None:
    datagram = encode_datagram(value, message_uuid)
    assert decode_datagram(datagram, len(datagram)) == HephEnvelope(message_uuid, value)


def test_encoding_is_compact_utf8_with_the_uuid_first() -> None:
    datagram = encode_datagram({"name": "Zoë", "n": [1, 2.5, None, True]}, SAMPLE_UUID)
    assert datagram == (
        b'{"uuid":"67e55044-10b1-426f-9247-bb680e5fe0c8",'
        b'"message":{"name":"Zo\xc3\xab","n":[1,2.5,null,true]}}'
    )


def test_each_encoding_without_a_uuid_gets_a_new_random_uuid4() -> None:
    first, second = (decode_datagram(encode_datagram("hi"), LIMIT).uuid for _ in range(2))
    assert first != second
    assert first.version == second.version == 4


def test_floats_stay_floats_and_ints_stay_ints() -> None:
    decoded = decode_datagram(encode_datagram([1.0, 1, -0.0, 2**64 - 1, -(2**63)]), LIMIT).message
    assert isinstance(decoded, list)
    assert [type(item) for item in decoded] == [float, int, float, int, int]
    assert math.copysign(1.0, decoded[2]) == -1.0


def test_tuples_and_subclasses_travel_as_their_json_base_type() -> None:
    value = (Colour.RED, Level.HIGH, OrderedDict(a=1), {Colour.RED: (1, 2)})
    decoded = decode_datagram(encode_datagram(value), LIMIT).message
    assert decoded == ["red", 3, {"a": 1}, {"red": [1, 2]}]
    assert isinstance(decoded, list)
    assert [type(item) for item in decoded] == [str, int, dict, dict]


def test_a_registered_message_travels_as_the_plain_object_of_its_fields() -> None:
    datagram = encode_datagram({"at": Point(1.0, 2.5), "seen": [Point(0.0)]}, SAMPLE_UUID)
    assert b'"message":{"at":{"x":1.0,"y":2.5},"seen":[{"x":0.0,"y":0.0}]}' in datagram
    assert decode_datagram(datagram, LIMIT).message == {
        "at": {"x": 1.0, "y": 2.5}, "seen": [{"x": 0.0, "y": 0.0}]}


def test_an_unknown_message_travels_as_its_fields_too() -> None:
    datagram = encode_datagram(UnknownMessage("other.Thing", {"k": [1]}))
    assert decode_datagram(datagram, LIMIT).message == {"k": [1]}


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (b"\x00", "bytes cannot travel"),
        (bytearray(b"x"), "bytes cannot travel"),
        (memoryview(b"x"), "bytes cannot travel"),
        (math.nan, "no NaN or infinity"),
        ([math.inf], "no NaN or infinity"),
        ({"a": -math.inf}, "no NaN or infinity"),
        ({1: "a"}, "JSON object keys are str"),
        ({True: "a"}, "JSON object keys are str"),
        ({None: "a"}, "JSON object keys are str"),
        (2**64, "outside -2\\*\\*63"),
        (-(2**63) - 1, "outside -2\\*\\*63"),
        ({1, 2}, "cannot encode set"),
        (1j, "cannot encode complex"),
        ("\ud800", "lone surrogate"),
        ({"\udc00": 1}, "lone surrogate"),
        (nested(127), "deeper than 126 levels.*serde_json"),
    ],
    ids=repr,
)
def test_values_json_cannot_carry_are_refused_with_encode_error(
        value: object, complaint: str) -> None:
    with pytest.raises(EncodeError, match=complaint):
        encode_datagram(value)


def test_a_uuid_given_as_anything_but_a_uuid_object_is_refused() -> None:
    with pytest.raises(EncodeError, match="must be a uuid.UUID, got str"):
        encode_datagram(1, str(SAMPLE_UUID))  # type: ignore[arg-type]


def test_sending_nests_at_most_126_levels_the_depth_serde_json_reads() -> None:
    # serde_json's recursion limit of 128 leaves 127 nested arrays and objects, and
    # Heph's envelope object is one of them.
    datagram = encode_datagram(nested(126))
    assert decode_datagram(datagram, LIMIT).message == nested(126)
    with pytest.raises(EncodeError, match="recursion limit") as refused:
        encode_datagram({"deep": nested(126)})
    assert "deeper than 126 levels" in str(refused.value)


def test_receiving_takes_up_to_256_levels_which_serde_json_writes_too() -> None:
    datagram = heph(nested(256))
    assert decode_datagram(datagram, LIMIT).message == nested(256)


def test_a_value_that_contains_itself_is_refused_with_encode_error() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="contains itself"):
        encode_datagram(loop)


# --- bare messages: what Heph's tcp relay reads -------------------------------------------


@RELAXED
@given(st.lists(json_values, min_size=1, max_size=5))
def test_bare_messages_back_to_back_read_as_serde_json_s_stream_would(
        values: list[object]) -> None:
    stream = b"".join(encode_bare(value) for value in values).decode()
    decoder, position, read = json.JSONDecoder(), 0, []
    while position < len(stream):
        value, position = decoder.raw_decode(stream, position)
        assert stream[position] == "\n"  # a number is never run into the next value
        position += 1
        read.append(value)
    assert read == values


def test_a_bare_message_is_the_compact_json_of_the_value_and_a_newline() -> None:
    assert encode_bare(Point(1.5)) == b'{"x":1.5,"y":0.0}\n'
    assert encode_bare("Zo\u00eb") == "\"Zo\u00eb\"\n".encode()
    assert encode_bare(7) == b"7\n"


def test_a_bare_message_nests_127_levels_one_more_than_an_envelope() -> None:
    # No envelope around it: serde_json's recursion limit of 128 leaves 127 levels.
    assert json.loads(encode_bare(nested(127))) == nested(127)
    with pytest.raises(EncodeError, match="deeper than 127 levels"):
        encode_bare(nested(128))


@pytest.mark.parametrize("value", [b"bytes", math.nan, {1: "int key"}, 2**64, "\ud800"],
                         ids=repr)
def test_a_bare_message_refuses_what_json_cannot_carry(value: object) -> None:
    with pytest.raises(EncodeError):
        encode_bare(value)


# --- decoding ---------------------------------------------------------------------------


def test_decoding_reads_what_heph_writes() -> None:
    # serde_json's compact output for Heph's Message { uuid, message: "Hello world!" }.
    datagram = b'{"uuid":"67e55044-10b1-426f-9247-bb680e5fe0c8","message":"Hello world!"}'
    assert decode_datagram(datagram, LIMIT) == HephEnvelope(SAMPLE_UUID, "Hello world!")


@pytest.mark.parametrize(
    "datagram",
    [
        heph({"a": 1}),
        b' \r\n\t{ "message" : {"a":1} , "uuid" : "67e55044-10b1-426f-9247-bb680e5fe0c8" }\n',
        heph({"a": 1}, "67E55044-10B1-426F-9247-BB680E5FE0C8"),
        heph({"a": 1}, "67e5504410b1426f9247bb680e5fe0c8"),
    ],
    ids=["json.dumps", "whitespace and key order", "upper case uuid", "uuid without hyphens"],
)
def test_decoding_tolerates_what_heph_tolerates(datagram: bytes) -> None:
    assert decode_datagram(datagram, LIMIT) == HephEnvelope(SAMPLE_UUID, {"a": 1})


def test_escaped_text_decodes_to_the_text_it_stands_for() -> None:
    datagram = heph("\U0001f600 \\ud800 {\"}")  # json.dumps escapes the emoji as a pair
    assert b"\\ud83d\\ude00" in datagram
    assert decode_datagram(datagram, LIMIT).message == "\U0001f600 \\ud800 {\"}"


UUID = b'"uuid":"67e55044-10b1-426f-9247-bb680e5fe0c8"'


@pytest.mark.parametrize(
    ("datagram", "complaint"),
    [
        (b"", "not valid JSON"),
        (b"\xff{}", "not valid UTF-8"),
        (b"\xef\xbb\xbf{" + UUID + b',"message":1}', "not valid JSON"),
        (b"{" + UUID + b',"message":1', "not valid JSON"),
        (b"{" + UUID + b',"message":1} {}', "not valid JSON"),
        (b"[1]", "must be one JSON object .* got an array"),
        (b"null", "got null"),
        (b'{"message":1}', 'lacks "uuid"'),
        (b"{" + UUID + b"}", 'lacks "message"'),
        (b"{}", 'lacks "uuid" and "message"'),
        (b"{" + UUID + b',"message":1,"to":"x"}', "also has 'to'"),
        (b"{" + UUID + b"," + UUID + b',"message":1}', "repeats the key 'uuid'"),
        (b"{" + UUID + b',"message":{"a":1,"a":2}}', "repeats the key 'a'"),
        (b'{"uuid":7,"message":1}', "uuid must be a UUID string.* got a number"),
        (b'{"uuid":"{67e55044-10b1-426f-9247-bb680e5fe0c8}","message":1}', "uuid must be"),
        (b'{"uuid":"urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8","message":1}', "uuid must"),
        (b'{"uuid":"67e55044-10b1426f-9247-bb680e5fe0c8","message":1}', "uuid must be"),
        (b'{"uuid":"67e5504410b1426f9247bb680e5fe0c","message":1}', "uuid must be"),
        (b'{"uuid":"67e55044-10b1-426f-9247-bb680e5fe0cg","message":1}', "uuid must be"),
        (b"{" + UUID + b',"message":NaN}', "NaN is not JSON"),
        (b"{" + UUID + b',"message":[Infinity]}', "Infinity is not JSON"),
        (b"{" + UUID + b',"message":-Infinity}', "-Infinity is not JSON"),
        (b"{" + UUID + b',"message":1e400}', "beyond the range of a 64-bit float"),
        (b"{" + UUID + b',"message":1' + b"0" * 309 + b"}", "beyond the range of a 64-bit"),
        (b"{" + UUID + b',"message":[-1' + b"0" * 309 + b"]}", "beyond the range of a 64-bit"),
        (b"{" + UUID + b',"message":' + b"9" * 5000 + b"}", "beyond the range of a 64-bit"),
        (b"{" + UUID + b',"message":"\\ud800"}', "lone surrogate"),
        (b"{" + UUID + b',"message":{"\\udfff":1}}', "lone surrogate"),
        (b"{" + UUID + b',"message":' + b"[" * 257 + b"]" * 257 + b"}", "deeper than 256"),
        (b"{" + UUID + b',"message":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "deeper than"),
    ],
    ids=repr,
)
def test_decoding_refuses_anything_else_saying_what_is_wrong(
        datagram: bytes, complaint: str) -> None:
    with pytest.raises(MalformedFrame, match=complaint):
        decode_datagram(datagram, 1 << 20)


@pytest.mark.parametrize(
    ("number", "received"),
    [
        (b"18446744073709551615", 2**64 - 1),
        (b"-9223372036854775808", -(2**63)),
        (b"18446744073709551616", 2.0**64),
        (b"-9223372036854775809", -(2.0**63)),
        (b"340282366920938463463374607431768211455", 2.0**128),  # u128::MAX
        (b"-170141183460469231731687303715884105728", -(2.0**127)),  # i128::MIN
        (b"1" + b"0" * 308, 1e308),
    ],
    ids=["u64::MAX", "i64::MIN", "2**64", "-2**63-1", "u128::MAX", "i128::MIN", "10**308"],
)
def test_integers_beyond_64_bits_arrive_as_the_nearest_float_as_serde_json_reads_them(
        number: bytes, received: object) -> None:
    datagram = b"{" + UUID + b',"message":{"n":[' + number + b"]}}"
    message = decode_datagram(datagram, LIMIT).message
    assert message == {"n": [received]}
    assert isinstance(message, dict) and type(message["n"][0]) is type(received)


def test_an_integer_beyond_64_bits_as_the_whole_message_arrives_as_a_float() -> None:
    assert decode_datagram(heph(2**64), LIMIT).message == 2.0**64


@RELAXED
@given(st.integers(-(10**330), 10**330), st.integers(0, 2))
def test_any_integer_is_received_as_int_in_the_data_model_else_as_float_or_refused(
        number: int, depth: int) -> None:
    datagram = heph(_wrapped(number, depth))
    if INT_MIN <= number <= INT_MAX:
        expected: object = number
    else:
        try:
            expected = float(number)
        except OverflowError:
            with pytest.raises(MalformedFrame, match="beyond the range of a 64-bit float"):
                decode_datagram(datagram, LIMIT)
            return
    received = decode_datagram(datagram, LIMIT).message
    assert received == _wrapped(expected, depth)
    encode_datagram(received)  # and it can be sent on


def _wrapped(value: object, depth: int) -> object:
    for level in range(depth):
        value = [value] if level % 2 else {"k": value, "other": 1}
    return value


def test_a_datagram_over_the_size_limit_is_refused_before_it_is_read() -> None:
    datagram = encode_datagram("x" * 100)
    assert decode_datagram(datagram, len(datagram)).message == "x" * 100
    with pytest.raises(MalformedFrame, match=f"{len(datagram)} bytes exceeds the limit of"):
        decode_datagram(datagram, len(datagram) - 1)


@RELAXED
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_message_or_malformed_frame_only(data: bytes) -> None:
    try:
        decode_datagram(data, LIMIT)
    except MalformedFrame:
        pass


@RELAXED
@given(heph_messages, st.data())
def test_damaged_datagrams_give_a_message_or_malformed_frame_only(
        sent: HephEnvelope, data: st.DataObject) -> None:
    damaged = bytearray(encode_datagram(sent.message, sent.uuid))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(damaged)))
        action = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.sampled_from(b'{}[]",:\\ 0e-\x00\xff') | st.integers(0, 255))
        if action == "insert":
            damaged.insert(at, byte)
        elif at < len(damaged):
            damaged[at:at + 1] = bytes([byte]) if action == "replace" else b""
    try:
        received = decode_datagram(bytes(damaged), LIMIT)
    except MalformedFrame:
        return
    encode_datagram(received.message, received.uuid)  # whatever decodes can be sent on


# --- telling heph-json from net-relay packets -------------------------------------------


@given(st.integers(1, INT_MAX), st.integers(1, INT_MAX), st.binary(min_size=1, max_size=40))
def test_net_relay_packets_are_never_taken_for_heph_json(
        incarnation: int, sequence: int, payload: bytes) -> None:
    frame = encode_frame(Frame(FrameKind.MESSAGE, "json", payload, target="a"))
    assert not is_heph_json(encode_packet(incarnation, sequence, [frame]))
    sealer = Sealer(KeyRing({1: bytes(32)}, 1))
    assert not is_heph_json(sealer.seal(incarnation, sequence, sequence, frame))
    assert not is_heph_json(sealer.seal(incarnation, 0, sequence, bytes(8), SEALED | HELLO))


@pytest.mark.parametrize(
    ("datagram", "expected"),
    [
        (encode_datagram(1), True),
        (b" \t\r\n{", True),
        (b"{", True),
        (b"", False),
        (b"   ", False),
        (b"[1]", False),
        (b"\xef\xbb\xbf{}", False),
        (b"NR\x01\x00", False),
    ],
    ids=repr,
)
def test_heph_json_is_told_by_its_first_byte_after_whitespace(
        datagram: bytes, expected: bool) -> None:
    assert is_heph_json(datagram) is expected


# --- streams ----------------------------------------------------------------------------

whitespace = st.text(" \t\r\n", max_size=3).map(str.encode)


def feed_in_pieces(splitter: HephStreamSplitter, stream: bytes, cuts: list[int]) -> list[object]:
    """Feed ``stream`` in pieces of the sizes in ``cuts`` (cycled); return what came out."""
    received: list[object] = []
    position, index = 0, 0
    while position < len(stream):
        size = cuts[index % len(cuts)]
        received += splitter.feed(stream[position:position + size])
        assert splitter.buffered <= 10_000
        position += size
        index += 1
    return received


@RELAXED
@given(st.lists(st.tuples(heph_messages, whitespace), max_size=8),
       st.lists(st.integers(1, 40), min_size=1, max_size=8))
def test_any_chunking_of_a_stream_yields_its_messages_in_order(
        sent: list[tuple[HephEnvelope, bytes]], cuts: list[int]) -> None:
    stream = b"".join(encode_datagram(m.message, m.uuid) + gap for m, gap in sent)
    splitter = HephStreamSplitter(max_object_size=10_000)
    assert feed_in_pieces(splitter, stream, cuts) == [m for m, _ in sent]
    splitter.end()


def test_objects_written_by_other_tools_split_byte_by_byte() -> None:
    objects: list[dict[str, object]] = [{"uuid": str(SAMPLE_UUID), "message": {"say": 'a "}{" \\" \\\\', "n": [1, {}]}},
               {"message": "\U0001f600\\", "uuid": str(SAMPLE_UUID).upper()}]
    stream = json.dumps(objects[0], indent=2).encode() + json.dumps(objects[1]).encode()
    splitter = HephStreamSplitter(max_object_size=1000)
    received = feed_in_pieces(splitter, stream, [1])
    assert received == [HephEnvelope(SAMPLE_UUID, o["message"]) for o in objects]
    assert splitter.buffered == 0


def test_a_stream_with_anything_but_whitespace_between_objects_is_refused() -> None:
    splitter = HephStreamSplitter(max_object_size=1000)
    datagram = encode_datagram(1)
    assert len(splitter.feed(datagram)) == 1
    with pytest.raises(MalformedFrame, match=f"b',' at byte {len(datagram) + 1}; between obj"):
        splitter.feed(b" ,")


def test_a_stream_that_does_not_start_with_an_object_is_refused() -> None:
    with pytest.raises(MalformedFrame, match=r"b'\[' at byte 2"):
        HephStreamSplitter(max_object_size=1000).feed(b"\r\n[1]")


def test_an_object_over_the_limit_is_refused_before_it_ends() -> None:
    splitter = HephStreamSplitter(max_object_size=100)
    splitter.feed(b'{"uuid":' + b" " * 80)
    with pytest.raises(MalformedFrame, match="already 101 bytes, over the limit of 100"):
        splitter.feed(b" " * 13)
    assert splitter.buffered == 0


# Whole objects, and pieces that drive a splitter into every state: inside
# strings, after escapes, nested, over the limit, at garbage.
stream_pieces = (
    heph_messages.map(lambda m: encode_datagram(m.message, m.uuid))
    | st.sampled_from([b"{", b"}", b'"', b"\\", b'\\"', b" ", b"\n", b":", b",", b'"uuid":'])
    | st.binary(max_size=3)
)


def outcome(stream: bytes, cuts: list[int], limit: int) -> tuple[list[HephEnvelope], bool]:
    """The messages a splitter gives for ``stream`` fed in pieces, and whether it failed."""
    splitter = HephStreamSplitter(max_object_size=limit)
    received: list[HephEnvelope] = []
    position, index = 0, 0
    try:
        while position < len(stream):
            size = cuts[index % len(cuts)]
            received += splitter.feed(stream[position:position + size])
            assert splitter.buffered <= limit
            position, index = position + size, index + 1
        splitter.end()
    except MalformedFrame:
        return received, True
    return received, False


@RELAXED
@given(st.lists(stream_pieces, max_size=40).map(b"".join),
       st.lists(st.integers(1, 30), min_size=1, max_size=5))
def test_any_stream_gives_the_same_outcome_whatever_the_chunking_and_stays_bounded(
        stream: bytes, cuts: list[int]) -> None:
    assert outcome(stream, cuts, 200) == outcome(stream, [len(stream) or 1], 200)


def test_an_object_heph_would_refuse_is_refused_in_a_stream_too() -> None:
    splitter = HephStreamSplitter(max_object_size=1000)
    with pytest.raises(MalformedFrame, match=r"object at byte 0: .*also has 'to'"):
        splitter.feed(b'{"uuid":"67e5504410b1426f9247bb680e5fe0c8","message":1,"to":2}')


def test_messages_whole_before_a_fault_are_delivered_and_the_fault_follows() -> None:
    splitter = HephStreamSplitter(max_object_size=1000)
    good = encode_datagram("first", SAMPLE_UUID)
    assert splitter.feed(good + b"\n}" + good) == [HephEnvelope(SAMPLE_UUID, "first")]
    with pytest.raises(MalformedFrame, match="between objects only whitespace"):
        splitter.feed(good)


def test_a_fault_after_whole_messages_is_raised_at_the_end_of_the_stream() -> None:
    splitter = HephStreamSplitter(max_object_size=1000)
    assert len(splitter.feed(encode_datagram(1) + b"x")) == 1
    with pytest.raises(MalformedFrame, match="b'x'"):
        splitter.end()


def test_after_a_fault_every_call_refuses_the_stream() -> None:
    splitter = HephStreamSplitter(max_object_size=1000)
    with pytest.raises(MalformedFrame):
        splitter.feed(b"x")
    for _ in range(2):
        with pytest.raises(MalformedFrame, match="b'x' at byte 0"):
            splitter.feed(encode_datagram(1))
    with pytest.raises(MalformedFrame, match="b'x' at byte 0"):
        splitter.end()


def test_a_stream_that_ends_inside_an_object_is_malformed() -> None:
    splitter = HephStreamSplitter(max_object_size=1000)
    datagram = encode_datagram("cut")
    assert splitter.feed(datagram + b"  " + datagram[:-1]) != []
    with pytest.raises(MalformedFrame, match=f"ended inside the object at byte {len(datagram) + 2}"):
        splitter.end()


def test_a_stream_that_ends_between_objects_ends_cleanly() -> None:
    splitter = HephStreamSplitter(max_object_size=1000)
    splitter.feed(encode_datagram(1) + b"\n\n")
    splitter.end()
    assert splitter.buffered == 0


def test_a_splitter_needs_room_for_an_object() -> None:
    with pytest.raises(ConfigError, match="at least 2"):
        HephStreamSplitter(max_object_size=1)


# --- duplicate uuids --------------------------------------------------------------------


def test_a_uuid_is_first_seen_once() -> None:
    window = UuidWindow()
    assert window.first_time(SAMPLE_UUID)
    assert not window.first_time(uuid.UUID(str(SAMPLE_UUID)))
    assert window.first_time(uuid.uuid4())


@given(st.integers(1, 5), st.lists(st.integers(0, 7), max_size=60))
def test_a_repeated_uuid_is_dropped_until_enough_other_uuids_push_it_out(
        max_entries: int, sightings: list[int]) -> None:
    # The model: a uuid is remembered while fewer than max_entries distinct
    # other uuids have been seen since it was last seen.
    window = UuidWindow(max_entries)
    for at, number in enumerate(sightings):
        earlier = [i for i in range(at) if sightings[i] == number]
        others = set(sightings[earlier[-1] + 1:at]) if earlier else set()
        remembered = bool(earlier) and len(others) < max_entries
        assert window.first_time(uuid.UUID(int=number)) is not remembered
        assert len(window) <= max_entries


def test_a_uuid_is_remembered_per_sender() -> None:
    window = UuidWindow()
    here, there = ("udp", ("127.0.0.1", 9001)), ("udp", ("127.0.0.1", 9002))
    assert window.first_time(SAMPLE_UUID, here)
    assert window.first_time(SAMPLE_UUID, there)
    assert not window.first_time(SAMPLE_UUID, here)
    assert not window.first_time(SAMPLE_UUID, there)
    assert window.first_time(SAMPLE_UUID, ("tcp", ("127.0.0.1", 9001)))


def test_seeing_a_uuid_again_keeps_it_remembered() -> None:
    window = UuidWindow(max_entries=2)
    a, b, c = (uuid.UUID(int=n) for n in range(3))
    assert window.first_time(a) and window.first_time(b)
    assert not window.first_time(a)  # a is now the most recent: b goes first
    assert window.first_time(c)
    assert not window.first_time(a)
    assert window.first_time(b)
    assert window.evictions == 2


def test_the_window_holds_65536_uuids_by_default_and_no_more() -> None:
    window = UuidWindow()
    for number in range(65536 + 10):
        window.first_time(uuid.UUID(int=number))
    assert len(window) == 65536
    assert window.evictions == 10


def _traced_bytes_of_full_window(repeats: int, distinct: int = 65536) -> int:
    """Bytes a default window holds after ``distinct`` random uuids from one source, each
    seen ``repeats`` times (each sighting a new UUID object, as decoding makes them)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        window = UuidWindow()
        for _ in range(repeats):
            numbers = random.Random(7)
            for _ in range(distinct):
                window.first_time(uuid.UUID(int=numbers.getrandbits(128)), SENDER)
        gc.collect()
        assert len(window) == 65536
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


# docs/heph.md: about 6.3 MiB filled once, about 8.8 MiB under a stream of new uuids.
def test_a_full_uuid_window_takes_about_6_mib() -> None:
    assert _traced_bytes_of_full_window(1) < 7 * 1024 * 1024


def test_uuids_seen_again_and_again_do_not_grow_the_window_much() -> None:
    assert _traced_bytes_of_full_window(5) < 7.5 * 1024 * 1024


def test_a_window_under_a_stream_of_new_uuids_stays_under_9_5_mib() -> None:
    assert _traced_bytes_of_full_window(1, distinct=4 * 65536) < 9.5 * 1024 * 1024


def test_a_window_needs_room_for_a_uuid() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        UuidWindow(0)
