"""A node speaking Heph's JSON datagrams: from plain sockets in, to Heph peers out."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from nodes import RawUdp, collector, udp_config, wait_for
from relay_core import ConfigError, ListenConfig, Node, PeerConfig
from relay_core.tools.demo import echo


def heph_listener(name: str) -> Node:
    config = dataclasses.replace(udp_config(name), listen={
        "udp": ListenConfig("127.0.0.1", 0, {"heph_json": "inbox"})})
    return Node(config)



async def test_a_heph_datagram_from_a_plain_socket_reaches_the_actor_once() -> None:
    received: list[object] = []
    sender = RawUdp()
    datagram = json.dumps({"uuid": str(uuid.uuid4()), "message": {"hello": "heph"}}).encode()
    try:
        async with heph_listener("python") as node, Node(udp_config("friend")) as friend:
            node.spawn(collector(received), name="inbox")
            node.spawn(echo, name="echo")
            sender.send_to(datagram, node.address("udp"))
            sender.send_to(datagram, node.address("udp"))  # a duplicate, by uuid
            await wait_for(lambda: node.stats().total["heph_duplicates"] == 1, "the duplicate")
            # the same listener still speaks the net-relay format
            reply = await friend.ref(f"{node.address('udp')}/echo").rpc("ours", timeout=5.0)
    finally:
        sender.close()
    assert received == [{"hello": "heph"}]
    assert reply == "ours"


async def test_the_same_uuid_from_two_sources_reaches_the_actor_from_each() -> None:
    # Two Heph nodes whose uuid generators fell back to the same constant seed.
    received: list[object] = []
    senders = [RawUdp(), RawUdp()]
    datagram = json.dumps({"uuid": str(uuid.uuid4()), "message": "same uuid"}).encode()
    try:
        async with heph_listener("python") as node:
            node.spawn(collector(received), name="inbox")
            for sender in senders:
                sender.send_to(datagram, node.address("udp"))
            await wait_for(lambda: len(received) == 2, "both messages")
            senders[1].send_to(datagram, node.address("udp"))
            await wait_for(lambda: node.stats().total["heph_duplicates"] == 1, "the duplicate")
    finally:
        for sender in senders:
            sender.close()
    assert received == ["same uuid", "same uuid"]


async def test_a_malformed_heph_datagram_is_counted_and_dropped() -> None:
    sender = RawUdp()
    try:
        async with heph_listener("python") as node:
            sender.send_to(b'{"uuid": "not-a-uuid", "message": 1}', node.address("udp"))
            await wait_for(lambda: node.stats().total["malformed"] == 1, "the refusal")
    finally:
        sender.close()


async def test_what_a_heph_json_peer_sends_parses_as_heph_format() -> None:
    tap = RawUdp()
    try:
        peers = {"rust": PeerConfig(address=tap.url, options={"format": "heph-json"})}
        async with Node(dataclasses.replace(udp_config("python"), peers=peers)) as node:
            await node.ref("rust/anyone").send({"order": 7, "items": ["a", "b"]})
            with pytest.raises(ConfigError, match="heph-json"):
                await node.ref("rust/anyone").rpc("no requests in heph", timeout=1.0)
            datagram, _ = await tap.receive()
    finally:
        tap.close()
    parsed = json.loads(datagram)
    assert set(parsed) == {"uuid", "message"}
    assert str(uuid.UUID(parsed["uuid"])) == parsed["uuid"]
    assert parsed["message"] == {"order": 7, "items": ["a", "b"]}


@pytest.mark.parametrize(("listen", "peer", "complaint"), [
    ({"heph_json": ""}, None, "name the actor"),
    ({"heph_json": "inbox", "keys": {"1": "11" * 32}}, None, "not authenticated"),
    (None, {"format": "protobuf"}, "heph-json"),
])
def test_heph_settings_are_checked(listen: dict[str, object] | None,
                                   peer: dict[str, object] | None, complaint: str) -> None:
    config = udp_config("python")
    if listen is not None:
        config = dataclasses.replace(config, listen={"udp": ListenConfig("127.0.0.1", 0, listen)})
    if peer is not None:
        config = dataclasses.replace(config, peers={
            "rust": PeerConfig(address="udp://127.0.0.1:9", options=peer)})
    with pytest.raises(ConfigError, match=complaint):
        Node(config)


async def test_heph_objects_on_a_tcp_stream_reach_the_actor() -> None:
    import asyncio

    received: list[object] = []
    config = dataclasses.replace(udp_config("python"), listen={
        "tcp": ListenConfig("127.0.0.1", 0, {"heph_json": "inbox"})})
    async with Node(config) as node:
        node.spawn(collector(received), name="inbox")
        port = int(node.address("tcp").rpartition(":")[2])
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        objects = [json.dumps({"uuid": str(uuid.uuid4()), "message": n}).encode() for n in range(3)]
        writer.write(objects[0] + b"\n" + objects[1][:10])
        await writer.drain()
        writer.write(objects[1][10:] + b"  " + objects[2])
        await writer.drain()
        await wait_for(lambda: len(received) == 3, "three messages")
        writer.close()
        await writer.wait_closed()
    assert received == [0, 1, 2]


async def test_a_heph_object_over_max_message_size_closes_its_tcp_connection_as_it_arrives(
) -> None:
    import asyncio

    received: list[object] = []
    config = dataclasses.replace(udp_config("python", max_message_size=1000), listen={
        "tcp": ListenConfig("127.0.0.1", 0, {"heph_json": "inbox"})})
    async with Node(config) as node:
        node.spawn(collector(received), name="inbox")
        port = int(node.address("tcp").rpartition(":")[2])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        whole = json.dumps({"uuid": str(uuid.uuid4()), "message": "fits"}).encode()
        # The object never ends: only its size, past the node's limit, closes the connection.
        writer.write(whole + b'{"uuid": "' + b"x" * 2000)
        async with asyncio.timeout(20):
            try:
                assert await reader.read() == b""
            except ConnectionResetError:
                pass
        await wait_for(lambda: node.stats().total["malformed"] == 1, "the count")
        writer.close()
    assert received == ["fits"]


def test_a_node_whose_messages_are_tiny_still_starts() -> None:
    Node(udp_config("python", max_message_size=1))


async def test_a_tcp_heph_peer_gets_a_stream_of_heph_objects() -> None:
    import asyncio

    chunks: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            chunks.append(data)
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        peers = {"rust": PeerConfig(address=f"tcp://127.0.0.1:{port}",
                                    options={"format": "heph-json"})}
        async with Node(dataclasses.replace(udp_config("python"), peers=peers)) as node:
            for n in range(3):
                await node.ref("rust/anyone").send({"n": n})
            await wait_for(lambda: b"".join(chunks).count(b'"uuid"') == 3, "three objects")
    finally:
        server.close()
        await server.wait_closed()
    stream = b"".join(chunks).decode()
    decoder, position, messages = json.JSONDecoder(), 0, []
    while position < len(stream):
        value, position = decoder.raw_decode(stream, position)
        messages.append(value["message"])
    assert messages == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_framing_is_set_by_the_node_not_written_in_config() -> None:
    config = dataclasses.replace(udp_config("python"), listen={
        "tcp": ListenConfig("127.0.0.1", 0, {"framing": "heph-json"})})
    with pytest.raises(ConfigError, match="heph_json"):
        Node(config)
