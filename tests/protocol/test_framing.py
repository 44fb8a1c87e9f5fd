"""Length-prefixed packets on a stream: any chunking gives back the same packets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core import MalformedFrame
from relay_core.protocol.framing import StreamDeframer, frame_for_stream

packets_strategy = st.lists(st.binary(min_size=1, max_size=300), max_size=20)


@given(packets_strategy, st.lists(st.integers(min_value=1, max_value=50), min_size=1))
def test_any_chunking_of_the_stream_yields_the_packets_in_order(
        packets: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame_for_stream(packet) for packet in packets)
    deframer = StreamDeframer(max_packet_size=1000)
    out: list[bytes] = []
    position, index = 0, 0
    while position < len(stream):
        size = cuts[index % len(cuts)]
        out += deframer.feed(stream[position:position + size])
        position += size
        index += 1
    assert out == packets
    assert deframer.buffered == 0


def test_a_stream_cut_at_any_byte_or_fed_byte_by_byte_yields_the_same_packets() -> None:
    packets = [b"a", b"bc" * 40, b"d" * 5]
    stream = b"".join(frame_for_stream(packet) for packet in packets)
    for cut in range(len(stream) + 1):
        deframer = StreamDeframer(max_packet_size=100)
        out = deframer.feed(stream[:cut]) + deframer.feed(stream[cut:])
        assert out == packets
        assert all(type(packet) is bytes for packet in out)
        assert deframer.buffered == 0
    deframer = StreamDeframer(max_packet_size=100)
    out = [packet for at in range(len(stream)) for packet in deframer.feed(stream[at:at + 1])]
    assert out == packets


def test_a_packet_still_incomplete_is_held_and_counted() -> None:
    deframer = StreamDeframer(max_packet_size=100)
    assert deframer.feed(frame_for_stream(b"whole") + frame_for_stream(b"half")[:6]) == [b"whole"]
    assert deframer.buffered == 6
    assert deframer.feed(b"lf") == [b"half"]
    assert deframer.buffered == 0


def test_a_declared_length_over_the_limit_is_rejected_before_buffering() -> None:
    deframer = StreamDeframer(max_packet_size=100)
    with pytest.raises(MalformedFrame, match="declares 101 bytes"):
        deframer.feed((101).to_bytes(4, "big") + b"x")


def test_a_declared_length_over_the_limit_is_rejected_once_its_split_prefix_is_whole() -> None:
    deframer = StreamDeframer(max_packet_size=100)
    assert deframer.feed(frame_for_stream(b"ok") + b"\x00\x00") == [b"ok"]
    with pytest.raises(MalformedFrame, match="declares 101 bytes"):
        deframer.feed(b"\x00\x65")


def test_a_zero_length_packet_is_rejected() -> None:
    with pytest.raises(MalformedFrame):
        StreamDeframer(max_packet_size=100).feed(b"\x00\x00\x00\x00")


def test_packets_whole_before_a_fault_come_first_and_the_fault_is_raised_next() -> None:
    deframer = StreamDeframer(max_packet_size=100)
    held = frame_for_stream(b"held")
    assert deframer.feed(held[:5]) == []
    chunk = held[5:] + frame_for_stream(b"next") + (101).to_bytes(4, "big") + b"more"
    assert deframer.feed(chunk) == [b"held", b"next"]
    assert deframer.failed
    for later in (b"", frame_for_stream(b"after")):
        with pytest.raises(MalformedFrame, match="declares 101 bytes"):
            deframer.feed(later)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_packets_or_malformed_frame_only(data: bytes) -> None:
    try:
        StreamDeframer(max_packet_size=64).feed(data)
    except MalformedFrame:
        pass
