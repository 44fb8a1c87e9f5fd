"""Stream framing is public: a stream transport writes packets and cuts them back out of its
byte stream with public core names only, and takes whatever framing the node hands it.

Everything but the tcp transport under test comes from ``relay_core``'s public surface, as
it would in a third-party stream transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core import (
    ConfigError,
    HephJsonFraming,
    LengthPrefixFraming,
    MalformedFrame,
    PacketSplitter,
    PluginOption,
    StreamFraming,
)
from relay_core.interfaces import check_declared
from relay_core.testing import PacketRecorder
from relay_transports._tcp import TcpTransport

WAIT_LIMIT = 20.0
LIMIT = 1000


def cut_and_split(splitter: PacketSplitter, stream: bytes, cuts: list[int]) -> list[bytes]:
    """Feed ``stream`` to ``splitter`` in pieces of the sizes ``cuts`` gives, in turn."""
    received: list[bytes] = []
    position, index = 0, 0
    while position < len(stream):
        size = cuts[index % len(cuts)]
        received += splitter.feed(stream[position:position + size])
        position, index = position + size, index + 1
    return received


def json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20),
    json_containers, max_leaves=6)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(
    lambda value: json.dumps(value).encode())
cuts_strategy = st.lists(st.integers(1, 40), min_size=1, max_size=6)


# -- the built-in framings, through the public contract ---------------------------------


def test_the_built_in_framings_are_stream_framings_with_their_names() -> None:
    framings: list[StreamFraming] = [LengthPrefixFraming(), HephJsonFraming()]
    assert all(isinstance(framing, StreamFraming) for framing in framings)
    assert [framing.name for framing in framings] == ["net-relay", "heph-json"]
    assert not isinstance("net-relay", StreamFraming)


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=12), cuts_strategy)
def test_any_chunking_of_length_prefixed_packets_gives_back_the_same_packets(
        packets: list[bytes], cuts: list[int]) -> None:
    framing = LengthPrefixFraming()
    stream = b"".join(framing.frame(packet) for packet in packets)
    splitter = framing.splitter(LIMIT)
    assert cut_and_split(splitter, stream, cuts) == packets
    assert splitter.buffered == 0 and not splitter.failed
    splitter.end()


@given(st.lists(json_objects, max_size=8), cuts_strategy)
def test_any_chunking_of_heph_json_objects_gives_back_the_same_objects(
        objects: list[bytes], cuts: list[int]) -> None:
    framing = HephJsonFraming()
    stream = b"\n".join(framing.frame(data) for data in objects)
    splitter = framing.splitter(10_000)
    assert cut_and_split(splitter, stream, cuts) == objects
    assert splitter.buffered == 0 and not splitter.failed
    splitter.end()


def test_a_length_prefix_is_four_bytes_big_endian_before_the_packet() -> None:
    framing = LengthPrefixFraming()
    assert framing.frame(b"NR\x01") == b"\x00\x00\x00\x03NR\x01"
    assert framing.overhead == 4


def test_a_heph_json_object_travels_as_itself() -> None:
    framing = HephJsonFraming()
    assert framing.frame(b'{"uuid": "x"}') == b'{"uuid": "x"}'
    assert framing.overhead == 0


def test_a_declared_length_over_the_limit_is_refused_before_it_is_buffered() -> None:
    splitter = LengthPrefixFraming().splitter(100)
    with pytest.raises(MalformedFrame, match=r"declares 101 bytes; allowed 1\.\.100"):
        splitter.feed((101).to_bytes(4, "big") + b"x" * 50)
    assert splitter.buffered == 0 and splitter.failed


def test_an_object_over_the_limit_is_refused_as_soon_as_it_passes_it() -> None:
    splitter = HephJsonFraming().splitter(20)
    with pytest.raises(MalformedFrame, match="is already 21 bytes, over the limit of 20"):
        splitter.feed(b'{"message": "' + b"x" * 8)
    assert splitter.buffered == 0


def test_a_heph_json_framing_bounds_objects_below_the_transports_packets() -> None:
    splitter = HephJsonFraming(max_object_size=20).splitter(LIMIT)
    with pytest.raises(MalformedFrame, match="over the limit of 20"):
        splitter.feed(b' {"uuid":"x","message":"12345"} ')


@pytest.mark.parametrize("framing, garbage, says", [
    (LengthPrefixFraming(), b"\x00\x00\x00\x00", "declares 0 bytes"),
    (HephJsonFraming(), b"  [1]", "between objects only whitespace may appear"),
])
def test_garbage_is_refused_after_the_packets_before_it_and_for_good(
        framing: StreamFraming, garbage: bytes, says: str) -> None:
    splitter = framing.splitter(LIMIT)
    whole = framing.frame(b'{"n": 1}')
    assert splitter.feed(whole + garbage) == [b'{"n": 1}']
    assert splitter.failed
    for later in (b"", whole):
        with pytest.raises(MalformedFrame, match=says):
            splitter.feed(later)
    with pytest.raises(MalformedFrame, match=says):
        splitter.end()


def test_a_heph_json_stream_that_ends_inside_an_object_says_so() -> None:
    splitter = HephJsonFraming().splitter(LIMIT)
    assert splitter.feed(b'{"uuid": "x", ') == []
    with pytest.raises(MalformedFrame, match="ended inside the object at byte 0"):
        splitter.end()


@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_packets_or_malformed_frame_only(data: bytes) -> None:
    for framing in (LengthPrefixFraming(), HephJsonFraming()):
        with contextlib.suppress(MalformedFrame):
            framing.splitter(64).feed(data)


def test_only_a_packet_a_framing_can_carry_is_let_through() -> None:
    assert LengthPrefixFraming().refusal is None  # it carries every packet: nothing to ask
    refusal = HephJsonFraming().refusal
    assert refusal is not None
    assert refusal(b' {"uuid": "x"}') is None
    assert refusal(b"NR\x01 a net-relay packet") == (
        "it speaks heph-json, so a packet must be one JSON object, starting with b'{';"
        " this one starts b'NR\\x01 a ne'")


# -- a framing of a third party, handed to a stream transport -----------------------------


class ShortPrefixFraming:
    """A framing only this test knows: each packet after its length as two bytes."""

    name = "short-prefix"
    overhead = 2

    def frame(self, packet: bytes) -> bytes:
        return len(packet).to_bytes(2, "big") + packet

    def refusal(self, packet: bytes) -> str | None:
        return None if len(packet) < 1 << 16 else "a short prefix counts up to 65535 bytes"

    def splitter(self, max_packet_size: int) -> PacketSplitter:
        return ShortPrefixSplitter(min(max_packet_size, 0xFFFF))


class ShortPrefixSplitter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = b""
        self.failed = False

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.failed:
            raise MalformedFrame("this stream was malformed")
        self.held += chunk
        packets = []
        while len(self.held) >= 2:
            size = int.from_bytes(self.held[:2], "big")
            if not 0 < size <= self.limit:
                self.failed = True
                raise MalformedFrame(f"a short prefix declares {size} bytes")
            if len(self.held) < 2 + size:
                break
            packets.append(self.held[2:2 + size])
            self.held = self.held[2 + size:]
        return packets

    def end(self) -> None:
        if self.failed:
            raise MalformedFrame("this stream was malformed")

    @property
    def buffered(self) -> int:
        return len(self.held)

    def discard(self) -> None:
        self.held = b""


@contextlib.asynccontextmanager
async def tcp(events: PacketRecorder, **options: Any) -> AsyncIterator[TcpTransport]:
    transport = TcpTransport(events, **options)
    try:
        yield transport
    finally:
        await transport.close()


def test_a_third_party_framing_is_a_stream_framing() -> None:
    assert isinstance(ShortPrefixFraming(), StreamFraming)


async def test_the_tcp_transport_speaks_the_framing_it_is_handed_both_ways() -> None:
    framing = ShortPrefixFraming()
    server_events, client_events = PacketRecorder(), PacketRecorder()
    packets = [b"one", b"two" * 100, b"three"]
    async with tcp(server_events, framing=framing) as server, tcp(client_events) as client:
        address = await server.listen("127.0.0.1", 0)
        destination = await client.prepare(*address, {"framing": framing})
        for packet in packets:
            client.send(destination, packet)
        await server_events.until(lambda: len(server_events.packets) == len(packets))
        source = server_events.packets[0][1]
        server.send(source, b"reply")
        await client_events.until(lambda: len(client_events.packets) == 1)
        async with asyncio.timeout(WAIT_LIMIT):
            _, writer = await asyncio.open_connection(*address)
            writer.write(b"\x00\x03raw")  # written by hand: a short prefix, then the packet
            await server_events.until(lambda: len(server_events.packets) == len(packets) + 1)
            writer.close()
    assert server_events.payloads == [*packets, b"raw"]
    assert client_events.payloads == [b"reply"]


@pytest.mark.parametrize("value", ["heph-json", 7, LengthPrefixFraming])
def test_the_tcp_transport_takes_a_stream_framing_only(value: object) -> None:
    given = re.escape(repr(value))
    with pytest.raises(ConfigError, match=rf"\[listen.tcp\] framing = {given} is not allowed: "
                                          "a StreamFraming"):
        TcpTransport(PacketRecorder(), framing=value)
    with pytest.raises(ConfigError, match=rf"\[peers.x\] framing = {given} is not allowed: "
                                          "a StreamFraming"):
        TcpTransport.check_peer_options({"framing": value}, "peers.x")


def test_an_option_of_type_framing_takes_a_stream_framing_only() -> None:
    declared = [PluginOption("framing", "framing", None, "How packets travel.")]
    check_declared(declared, {"framing": HephJsonFraming()}, "listen.pipe", "pipe")
    for value in ("heph-json", LengthPrefixFraming):
        with pytest.raises(ConfigError, match=r"\[listen.pipe\] framing = .*: must be a "
                                              "StreamFraming, which the node sets"):
            check_declared(declared, {"framing": value}, "listen.pipe", "pipe")
