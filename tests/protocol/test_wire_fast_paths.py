"""The wire format's fast paths give exactly what the general code gives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core import MalformedFrame, MessageTooLarge
from relay_core.protocol.wire import (
    Frame,
    FrameKind,
    MessageFrameEncoder,
    ReplyFrameEncoder,
    RequestFrameEncoder,
    encode_frame,
    encode_packet,
)
from relay_core.protocol.wire_read import decode_packet, decode_packet_compact, expand_repeats

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=32)
targets = st.text(min_size=1, max_size=40).filter(lambda t: len(t.encode()) <= 255)


@given(names, st.one_of(st.just(""), names), targets, st.binary(max_size=200))
def test_the_message_frame_encoder_matches_the_general_encoder(
        codec: str, compressor: str, target: str, payload: bytes) -> None:
    expected = encode_frame(Frame(FrameKind.MESSAGE, codec, payload, compressor, target))
    assert MessageFrameEncoder(codec, compressor, target).encode(payload) == expected


def test_names_that_concatenate_to_the_same_bytes_are_told_apart() -> None:
    first = Frame(FrameKind.MESSAGE, "msgpack", b"1", "", "xactor")
    second = Frame(FrameKind.MESSAGE, "msgpackx", b"2", "", "actor")
    third = Frame(FrameKind.MESSAGE, "msgpack", b"3", "xa", "ctor")
    packet = encode_packet(1, 1, [encode_frame(f) for f in (first, second, third, first)])
    assert decode_packet(packet).frames == (first, second, third, first)


def test_names_that_concatenate_to_the_same_bytes_are_told_apart_across_packets() -> None:
    first = Frame(FrameKind.MESSAGE, "msgpack", b"1", "zstd", "x")
    second = Frame(FrameKind.MESSAGE, "msgpackz", b"2", "std", "x")
    for sequence, frame in enumerate((first, second, first, second), start=1):
        packet = encode_packet(1, sequence, [encode_frame(frame)])
        assert decode_packet(packet).frames == (frame,)


call_ids = st.integers(min_value=1, max_value=2**64 - 1)
deadlines = st.integers(min_value=0, max_value=0xFFFFFFFE)
ids = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@given(names, st.one_of(st.just(""), names), targets, st.binary(max_size=200), call_ids,
       deadlines, ids, ids)
def test_the_request_frame_encoder_matches_the_general_encoder(
        codec: str, compressor: str, target: str, payload: bytes, call_id: int, deadline_ms: int,
        request_id: str, traceparent: str) -> None:
    expected = encode_frame(Frame(FrameKind.REQUEST, codec, payload, compressor, target,
                                  call_id, deadline_ms, request_id, traceparent))
    encoder = RequestFrameEncoder(codec, compressor, target)
    assert encoder.encode(payload, call_id, deadline_ms, request_id, traceparent) == expected


@given(st.sampled_from([FrameKind.RESPONSE, FrameKind.ERROR]), names,
       st.one_of(st.just(""), names), st.binary(max_size=200), call_ids, ids)
def test_the_reply_frame_encoder_matches_the_general_encoder(
        kind: FrameKind, codec: str, compressor: str, payload: bytes, call_id: int,
        request_id: str) -> None:
    expected = encode_frame(Frame(kind, codec, payload, compressor, call_id=call_id,
                                  request_id=request_id))
    encoder = ReplyFrameEncoder(kind, codec, compressor)
    assert encoder.encode(payload, call_id, request_id) == expected


@given(st.lists(st.tuples(call_ids, ids, ids), min_size=1, max_size=6))
def test_one_encoder_matches_the_general_encoder_whatever_ids_come_in_turn(
        calls: list[tuple[int, str, str]]) -> None:
    requests = RequestFrameEncoder("msgpack", "", "echo")
    replies = ReplyFrameEncoder(FrameKind.RESPONSE, "msgpack", "")
    for call_id, request_id, traceparent in calls:
        assert requests.encode(b"q", call_id, 5, request_id, traceparent) == encode_frame(
            Frame(FrameKind.REQUEST, "msgpack", b"q", "", "echo", call_id, 5, request_id,
                  traceparent))
        assert replies.encode(b"r", call_id, request_id) == encode_frame(
            Frame(FrameKind.RESPONSE, "msgpack", b"r", call_id=call_id, request_id=request_id))


@pytest.mark.parametrize("bad_id", ["caf\u00e9", "tab\there", "x" * 256])
def test_the_fast_encoders_refuse_what_the_general_encoder_refuses(bad_id: str) -> None:
    expected = MessageTooLarge if len(bad_id) > 255 else MalformedFrame
    with pytest.raises(expected, match="request id"):
        RequestFrameEncoder("msgpack", "", "echo").encode(b"x", 1, 100, bad_id, "")
    with pytest.raises(expected, match="request id"):
        ReplyFrameEncoder(FrameKind.RESPONSE, "msgpack", "").encode(b"x", 1, bad_id)
    with pytest.raises(MalformedFrame, match="call id 0"):
        RequestFrameEncoder("msgpack", "", "echo").encode(b"x", 0, 100, "id", "")
    with pytest.raises(MalformedFrame, match="call id 18446744073709551616"):
        ReplyFrameEncoder(FrameKind.RESPONSE, "msgpack", "").encode(b"x", 2**64, "id")
    with pytest.raises(MalformedFrame, match="deadline"):
        RequestFrameEncoder("msgpack", "", "echo").encode(b"x", 1, 0xFFFFFFFF, "id", "")


frame_kinds = st.sampled_from(list(FrameKind))


@st.composite
def repeated_frames(draw: st.DrawFn) -> list[Frame]:
    """Frames that differ only in their payloads (possibly empty): a burst to one actor."""
    kind = draw(frame_kinds)
    template = {
        FrameKind.MESSAGE: Frame(kind, draw(names), b"", "", draw(targets)),
        FrameKind.REQUEST: Frame(kind, draw(names), b"", "", draw(targets), 7, 100, "rid"),
        FrameKind.RESPONSE: Frame(kind, draw(names), b"", draw(names), call_id=3),
        FrameKind.ERROR: Frame(kind, draw(names), b"", call_id=3, request_id="r"),
        FrameKind.CANCEL: Frame(kind, "", b"", call_id=9),
    }[kind]
    payloads = draw(st.lists(
        st.just(b"") if kind is FrameKind.CANCEL else st.binary(max_size=40), min_size=1,
        max_size=8))
    return [template._replace(payload=payload) for payload in payloads]


@given(repeated_frames())
def test_frames_that_repeat_all_but_the_payload_decode_as_each_would_alone(
        frames: list[Frame]) -> None:
    packet = encode_packet(1, 1, [encode_frame(frame) for frame in frames])
    assert decode_packet(packet).frames == tuple(frames)


@given(repeated_frames())
def test_a_receiver_gets_a_repeat_as_its_payload_alone(frames: list[Frame]) -> None:
    # A repeat's payload must be as empty or not as the full frame's it repeats.
    expected: list[Frame | bytes] = []
    full = None
    for frame in frames:
        if full is not None and bool(frame.payload) == bool(full.payload):
            expected.append(frame.payload)
        else:
            expected.append(frame)
            full = frame
    _, _, items = decode_packet_compact(encode_packet(1, 1, [encode_frame(f) for f in frames]))
    assert list(items) == expected
    assert tuple(expand_repeats(items)) == tuple(frames)


def test_expanding_repeats_can_start_from_the_frame_they_repeat() -> None:
    frame = Frame(FrameKind.MESSAGE, "msgpack", b"1", "", "echo")
    assert list(expand_repeats([b"2", b"3"], frame)) == [
        frame._replace(payload=b"2"), frame._replace(payload=b"3")]


def test_a_repeated_frame_is_still_checked_for_a_payload_that_overruns_the_packet() -> None:
    frame = encode_frame(Frame(FrameKind.MESSAGE, "msgpack", b"abcd", "", "echo"))
    overrun = bytearray(frame)
    overrun[20:24] = (1000).to_bytes(4, "big")
    with pytest.raises(MalformedFrame, match="frame 2 .*payload of 1000 bytes"):
        decode_packet(encode_packet(1, 1, [frame, bytes(overrun)]))


@pytest.mark.parametrize("cut", [20, 21, 23])
def test_a_repeated_frame_cut_inside_its_payload_length_is_malformed(cut: int) -> None:
    frame = encode_frame(Frame(FrameKind.MESSAGE, "msgpack", b"abcd", "", "echo"))
    with pytest.raises(MalformedFrame, match="frame 2 .*24-byte fixed part"):
        decode_packet(encode_packet(1, 1, [frame, frame[:cut]]))


def test_a_repeated_frame_is_still_checked_for_a_payload_its_kind_forbids() -> None:
    cancel = encode_frame(Frame(FrameKind.CANCEL, "", b"", call_id=9))
    with_payload = cancel[:20] + (3).to_bytes(4, "big") + b"xyz"
    with pytest.raises(MalformedFrame, match="frame 2 .*CANCEL"):
        decode_packet(encode_packet(1, 1, [cancel, with_payload]))
