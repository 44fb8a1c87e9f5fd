"""The wire format's fast paths give exactly what the general code gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay_core._wire import (
    Frame,
    FrameKind,
    decode_packet,
    encode_frame,
    encode_packet,
    message_frame_encoder,
)

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=32)
targets = st.text(min_size=1, max_size=40).filter(lambda t: len(t.encode()) <= 255)


@given(names, st.one_of(st.just(""), names), targets, st.binary(max_size=200))
def test_the_message_frame_encoder_matches_the_general_encoder(
        codec: str, compressor: str, target: str, payload: bytes) -> None:
    expected = encode_frame(Frame(FrameKind.MESSAGE, codec, payload, compressor, target))
    assert message_frame_encoder(codec, compressor, target)(payload) == expected


def test_names_that_concatenate_to_the_same_bytes_are_told_apart() -> None:
    first = Frame(FrameKind.MESSAGE, "msgpack", b"1", "", "xactor")
    second = Frame(FrameKind.MESSAGE, "msgpackx", b"2", "", "actor")
    third = Frame(FrameKind.MESSAGE, "msgpack", b"3", "xa", "ctor")
    packet = encode_packet(1, 1, [encode_frame(f) for f in (first, second, third, first)])
    assert decode_packet(packet).frames == (first, second, third, first)
