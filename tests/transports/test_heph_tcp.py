"""Heph over TCP: the tcp transport's heph-json framing, and the object splitter under it.

A heph-json connection carries JSON objects back to back (docs/heph.md). The
transport hands each object's bytes, unchanged, to ``packet_received``, and
writes each packet it is given as it is; the node decodes and encodes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay_core import (
    ConfigError,
    HephJsonFraming,
    HostPort,
    LengthPrefixFraming,
    MalformedFrame,
    TransportError,
)
from relay_core.protocol.framing import frame_for_stream
from relay_core.protocol.heph import HephEnvelope, decode_datagram, encode_datagram
from relay_core.protocol.heph_stream import HephObjectSplitter, HephStreamSplitter
from relay_core.testing import PacketRecorder
from relay_transports._tcp import TcpTransport

WAIT_LIMIT = 20.0
HEPH = {"framing": HephJsonFraming()}
RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


Recorder = PacketRecorder


@contextlib.asynccontextmanager
async def tcp(events: Recorder, **options: Any) -> AsyncIterator[TcpTransport]:
    transport = TcpTransport(events, **options)
    try:
        yield transport
    finally:
        await transport.close()


@contextlib.asynccontextmanager
async def raw_server() -> AsyncIterator[tuple[HostPort, asyncio.Queue[bytes]]]:
    """A loopback server that is not net-relay: it queues every chunk it reads."""
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            chunks.put_nowait(chunk)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        host, port = server.sockets[0].getsockname()[:2]
        yield (str(host), int(port)), chunks
    finally:
        server.close()
        await server.wait_closed()


async def read_exactly(chunks: asyncio.Queue[bytes], size: int) -> bytes:
    received = b""
    async with asyncio.timeout(WAIT_LIMIT):
        while len(received) < size:
            received += await chunks.get()
    return received


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closes the connection (a reset counts as closing too)."""
    async with asyncio.timeout(WAIT_LIMIT):
        try:
            return await reader.read() == b""
        except ConnectionResetError:
            return True


def heph(message: object) -> bytes:
    """A heph-json object as another tool writes it: json.dumps, with spaces."""
    return json.dumps({"uuid": str(uuid.uuid4()), "message": message}).encode()


# -- inbound: objects from a heph-json client ---------------------------------------


async def test_each_object_on_the_stream_arrives_as_one_packet_of_its_exact_bytes() -> None:
    events = Recorder()
    sent = [heph({"name": "ada"}), encode_datagram([1, "}{", '"']), heph("three")]
    async with tcp(events, framing=HephJsonFraming()) as server:
        _, writer = await asyncio.open_connection(*await server.listen("127.0.0.1", 0))
        writer.write(sent[0] + b" \r\n\t" + sent[1][:9])
        await events.until(lambda: len(events.packets) == 1)
        writer.write(sent[1][9:] + b"\n" + sent[2])
        await events.until(lambda: len(events.packets) == 3)
        writer.close()
    assert events.payloads == sent
    assert [decode_datagram(packet, 1024).message for packet in events.payloads] == [
        {"name": "ada"}, [1, "}{", '"'], "three"
    ]
    assert {source for _, source in events.packets} == {writer.get_extra_info("sockname")[:2]}


async def test_garbage_closes_that_connection_only_after_the_objects_before_it() -> None:
    events = Recorder()
    good = heph("before the fault")
    async with tcp(events, framing=HephJsonFraming()) as server:
        host, port = await server.listen("127.0.0.1", 0)
        _, bystander = await asyncio.open_connection(host, port)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(good + frame_for_stream(b"NR a length-prefixed packet"))
        assert await closed_by_server(reader)
        bystander.write(heph("still served"))
        await events.until(lambda: len(events.packets) == 2)
        _, newcomer = await asyncio.open_connection(host, port)
        newcomer.write(heph("and newcomers too"))
        await events.until(lambda: len(events.packets) == 3)
        for each in (writer, bystander, newcomer):
            each.close()
    assert [decode_datagram(p, 1024).message for p in events.payloads] == [
        "before the fault", "still served", "and newcomers too"
    ]


async def test_a_refused_connection_is_logged_saying_what_was_wrong(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "relay_transports._tcp")
    async with tcp(Recorder(), framing=HephJsonFraming()) as server:
        reader, writer = await asyncio.open_connection(*await server.listen("127.0.0.1", 0))
        writer.write(b"  [1]")
        assert await closed_by_server(reader)
        writer.close()
    assert "b'[' at byte 2; between objects only whitespace may appear" in caplog.text


async def test_an_object_over_max_packet_size_closes_the_connection_before_it_ends() -> None:
    events = Recorder()
    async with tcp(events, framing=HephJsonFraming(), max_packet_size=1024) as server:
        reader, writer = await asyncio.open_connection(*await server.listen("127.0.0.1", 0))
        writer.write(b'{"uuid": "' + b"0" * 2000)
        assert await closed_by_server(reader)
        writer.close()
    assert events.packets == []


async def test_a_connection_cut_inside_an_object_delivers_only_whole_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "relay_transports._tcp")
    events = Recorder()
    whole = heph("whole")
    async with tcp(events, framing=HephJsonFraming()) as server:
        _, writer = await asyncio.open_connection(*await server.listen("127.0.0.1", 0))
        writer.write(whole + b"\n" + heph("cut")[:20])
        await events.until(lambda: len(events.packets) == 1)
        writer.close()
        await writer.wait_closed()
        async with asyncio.timeout(WAIT_LIMIT):
            while "ended inside the object" not in caplog.text:
                await asyncio.sleep(0.01)
    assert events.payloads == [whole]
    assert f"ended inside the object at byte {len(whole) + 1}" in caplog.text


# -- outbound: writing to a heph-json destination ---------------------------------


async def test_a_heph_json_destination_receives_exactly_the_json_bytes() -> None:
    sent = [encode_datagram({"n": number, "text": "é"}) for number in range(3)]
    async with raw_server() as (address, chunks), tcp(Recorder()) as client:
        destination = await client.prepare(*address, HEPH)
        for packet in sent:
            client.send(destination, packet)
        assert await read_exactly(chunks, sum(map(len, sent))) == b"".join(sent)


async def test_a_destination_without_the_option_keeps_length_prefixes() -> None:
    async with raw_server() as (address, chunks), tcp(Recorder(), framing=HephJsonFraming()) as client:
        destination = await client.prepare(*address)
        client.send(destination, b"NR packet")
        assert await read_exactly(chunks, 13) == frame_for_stream(b"NR packet")


async def test_two_heph_json_transports_talk_both_ways_on_one_connection() -> None:
    server_events, client_events = Recorder(), Recorder()
    request, reply = encode_datagram("request"), encode_datagram({"reply": None})
    async with tcp(server_events, framing=HephJsonFraming()) as server, tcp(client_events) as client:
        destination = await client.prepare(*await server.listen("127.0.0.1", 0), HEPH)
        client.send(destination, request)
        await server_events.until(lambda: len(server_events.packets) == 1)
        [(received, source)] = server_events.packets
        server.send(source, reply)
        await client_events.until(lambda: len(client_events.packets) == 1)
    assert received == request
    assert client_events.packets == [(reply, destination)]
    assert client_events.failures == []


async def test_a_heph_json_listener_writes_bare_values_back_on_the_connection_as_given(
        ) -> None:
    # Heph's tcp relay reads bare messages, not envelopes, on the connection it opened.
    events = Recorder()
    bare = [b"7\n", b'"Empty"\n', b"[1,-2]\n", b"null\n", b'{"answer":42}\n']
    async with tcp(events, framing=HephJsonFraming(answers_bare=True)) as server:
        reader, writer = await asyncio.open_connection(*await server.listen("127.0.0.1", 0))
        try:
            writer.write(heph("question"))
            await events.until(lambda: len(events.packets) == 1)
            [(_, source)] = events.packets
            for value in bare:
                assert server.send(source, value) is None
            with pytest.raises(TransportError, match="speaks heph-json.*JSON value"):
                server.send(source, b"NR\x01 a net-relay packet")
            async with asyncio.timeout(WAIT_LIMIT):
                written = await reader.readexactly(sum(map(len, bare)))
        finally:
            writer.close()
    assert written == b"".join(bare)


async def test_a_packet_that_is_not_a_json_object_is_refused_for_a_heph_json_destination() -> None:
    async with raw_server() as (address, _), tcp(Recorder()) as client:
        destination = await client.prepare(*address, HEPH)
        with pytest.raises(TransportError, match="speaks heph-json, so a packet must be one JSON"):
            client.send(destination, b"NR\x01 a net-relay packet")


async def test_a_destination_speaks_one_framing() -> None:
    async with raw_server() as (address, _), tcp(Recorder()) as client:
        await client.prepare(*address)
        with pytest.raises(ConfigError, match="already prepared with framing 'net-relay'"):
            await client.prepare(*address, HEPH)
        await client.prepare(*address, {"framing": LengthPrefixFraming()})


# -- options -------------------------------------------------------------------------


@pytest.mark.parametrize("options", [HEPH, {"framing": LengthPrefixFraming()}, {"tls": True, **HEPH}])
def test_peers_may_choose_their_framing_with_or_without_tls(options: dict[str, object]) -> None:
    TcpTransport.check_peer_options(options, "peers.heph")


def test_a_peer_framing_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"\[peers.heph\] framing = 'Heph' is not allowed"):
        TcpTransport.check_peer_options({"framing": "Heph"}, "peers.heph")


# -- the object splitter (sans-IO) -------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
heph_objects = st.builds(lambda u, m: encode_datagram(m, u), st.uuids(), json_values) | st.builds(
    lambda m, indent: json.dumps({"message": m, "uuid": str(uuid.uuid4())}, indent=indent).encode(),
    json_values,
    st.none() | st.integers(0, 2),
)
whitespace = st.text(" \t\r\n", max_size=3).map(str.encode)


def split_in_pieces(splitter: HephObjectSplitter, stream: bytes, cuts: list[int]) -> list[bytes]:
    received: list[bytes] = []
    position, index = 0, 0
    while position < len(stream):
        size = cuts[index % len(cuts)]
        received += splitter.feed(stream[position:position + size])
        position, index = position + size, index + 1
    return received


@RELAXED
@given(st.lists(st.tuples(whitespace, heph_objects), max_size=6),
       st.lists(st.integers(1, 40), min_size=1, max_size=6))
def test_any_chunking_yields_each_objects_exact_bytes_in_order(
        sent: list[tuple[bytes, bytes]], cuts: list[int]) -> None:
    splitter = HephObjectSplitter(max_object_size=10_000)
    stream = b"".join(gap + data for gap, data in sent)
    assert split_in_pieces(splitter, stream, cuts) == [data for _, data in sent]
    assert splitter.buffered == 0
    splitter.end()


@RELAXED
@given(st.lists(heph_objects, max_size=4).map(b"\n".join),
       st.lists(st.integers(1, 30), min_size=1, max_size=4))
def test_the_object_splitter_finds_what_the_message_splitter_decodes(
        stream: bytes, cuts: list[int]) -> None:
    objects = split_in_pieces(HephObjectSplitter(max_object_size=10_000), stream, cuts)
    messages = HephStreamSplitter(max_object_size=10_000).feed(stream)
    assert [decode_datagram(data, 10_000) for data in objects] == messages
    assert all(isinstance(message, HephEnvelope) for message in messages)


def test_a_whole_object_over_the_limit_is_refused() -> None:
    splitter = HephObjectSplitter(max_object_size=20)
    with pytest.raises(MalformedFrame, match="object at byte 1 is 30 bytes, over the limit of 20"):
        splitter.feed(b' {"uuid":"x","message":"12345"} ')
    assert splitter.buffered == 0


def test_a_fault_after_whole_objects_waits_for_the_next_call_and_shows_meanwhile() -> None:
    splitter = HephObjectSplitter(max_object_size=1000)
    whole = encode_datagram(1)
    assert splitter.feed(whole + b" x") == [whole]
    assert splitter.failed
    with pytest.raises(MalformedFrame, match=f"b'x' at byte {len(whole) + 1}"):
        splitter.feed(b"")
    with pytest.raises(MalformedFrame, match="b'x'"):
        splitter.end()


def test_the_object_splitter_does_not_judge_what_is_inside_an_object() -> None:
    assert HephObjectSplitter(max_object_size=1000).feed(b'{"not": "heph"}') == [b'{"not": "heph"}']
