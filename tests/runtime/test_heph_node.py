"""A node speaking Heph's JSON datagrams: from plain sockets in, to Heph peers out."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from pathlib import Path

import pytest

from nodes import RawUdp, collector, udp_config, wait_for
from relay_core import (
    ActorContext,
    ConfigError,
    HephMessage,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
)
from relay_core.runtime.node import ActorFunction
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


# --- routing with the source, and answers back to the Heph node ---------------------------


def heph_listeners(**options: object) -> NodeConfig:
    """A node whose udp and tcp listeners both take Heph's format, with ``options``."""
    return dataclasses.replace(udp_config("python"), listen={
        scheme: ListenConfig("127.0.0.1", 0, dict(options)) for scheme in ("udp", "tcp")})


def envelope(value: object) -> bytes:
    return json.dumps({"uuid": str(uuid.uuid4()), "message": value}).encode()


def answering(into: list[HephMessage], answers: list[object]) -> ActorFunction:
    """An actor that keeps each HephMessage and answers its sender with ``answers``."""
    async def actor(ctx: ActorContext) -> None:
        async for received in ctx:
            assert isinstance(received, HephMessage)
            into.append(received)
            for answer in answers:
                await received.reply.send(answer)
    return actor


def bare_values(stream: bytes) -> list[object]:
    """The JSON values written back to back on ``stream`` (whitespace between allowed), as
    serde_json's StreamDeserializer, which Heph's tcp relay reads with, finds them."""
    text, decoder, position, values = stream.decode(), json.JSONDecoder(), 0, []
    while position < len(text.rstrip()):
        while text[position].isspace():
            position += 1
        value, position = decoder.raw_decode(text, position)
        values.append(value)
    return values


async def test_with_the_source_an_actor_answers_the_heph_node_over_udp() -> None:
    received: list[HephMessage] = []
    heph = RawUdp()
    try:
        async with Node(heph_listeners(heph_json="inbox", heph_with_source=True)) as node:
            node.spawn(answering(received, [{"answer": 42}, "Empty"]), name="inbox")
            heph.send_to(envelope({"question": "?"}), node.address("udp"))
            first, where = await heph.receive()
            second, _ = await heph.receive()
    finally:
        heph.close()
    assert [r.message for r in received] == [{"question": "?"}]
    assert received[0].source == heph.url
    assert where == ("127.0.0.1", int(node.address("udp").rpartition(":")[2]))
    answers = [json.loads(first), json.loads(second)]
    assert [set(a) for a in answers] == [{"uuid", "message"}] * 2
    assert [a["message"] for a in answers] == [{"answer": 42}, "Empty"]
    assert all(str(uuid.UUID(a["uuid"])) == a["uuid"] for a in answers)


async def test_with_the_source_an_actor_answers_on_heph_s_tcp_connection_in_bare_messages(
        ) -> None:
    # Heph's tcp relay connects out, writes envelopes, and reads bare messages (its
    # StreamDeserializer of M) on that same connection: answers go back there.
    answers: list[object] = [{"answer": 42}, "Empty", 7, 2.5, None, [1, -2], True]
    received: list[HephMessage] = []
    async with Node(heph_listeners(heph_json="inbox", heph_with_source=True)) as node:
        node.spawn(answering(received, answers), name="inbox")
        port = int(node.address("tcp").rpartition(":")[2])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(envelope({"question": "?"}))
            await writer.drain()
            stream = b""
            async with asyncio.timeout(20):
                # each bare message ends with a newline, so a number is never cut short
                while stream.count(b"\n") < len(answers):
                    stream += await reader.read(65536)
            local = writer.get_extra_info("sockname")
        finally:
            writer.close()
            await writer.wait_closed()
    assert bare_values(stream) == answers
    assert stream.endswith(b"\n") and b'"uuid"' not in stream
    assert received[0].source == f"tcp://127.0.0.1:{local[1]}"
    assert received[0].message == {"question": "?"}


async def test_without_heph_with_source_actors_still_receive_the_bare_message() -> None:
    received: list[object] = []
    sender = RawUdp()
    try:
        async with Node(heph_listeners(heph_json="inbox")) as node:
            node.spawn(collector(received), name="inbox")
            sender.send_to(envelope({"plain": True}), node.address("udp"))
            await wait_for(lambda: len(received) == 1, "the message")
    finally:
        sender.close()
    assert received == [{"plain": True}]


async def test_a_group_to_all_gets_a_copy_each_of_every_heph_message() -> None:
    inboxes: dict[str, list[object]] = {"a": [], "b": [], "c": []}
    sender = RawUdp()
    try:
        async with Node(heph_listeners(heph_json=list(inboxes), heph_delivery="to_all")) as node:
            for name, into in inboxes.items():
                node.spawn(collector(into), name=name)
            for n in range(3):
                sender.send_to(envelope({"n": n}), node.address("udp"))
            await wait_for(lambda: all(len(i) == 3 for i in inboxes.values()), "nine copies")
    finally:
        sender.close()
    assert all(into == [{"n": 0}, {"n": 1}, {"n": 2}] for into in inboxes.values())
    # copies, not one object shared: an actor that changes its message changes only its own
    assert inboxes["a"][0] is not inboxes["b"][0]


async def test_a_group_to_one_gets_each_heph_message_once_in_turn() -> None:
    inboxes: dict[str, list[object]] = {"a": [], "b": []}
    async with Node(heph_listeners(heph_json=list(inboxes), heph_delivery="to_one")) as node:
        for name, into in inboxes.items():
            node.spawn(collector(into), name=name)
        port = int(node.address("tcp").rpartition(":")[2])
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(envelope(n) for n in range(4)))
        await writer.drain()
        await wait_for(lambda: sum(map(len, inboxes.values())) == 4, "four messages")
        writer.close()
        await writer.wait_closed()
    assert inboxes == {"a": [0, 2], "b": [1, 3]}


async def test_a_group_with_the_source_answers_from_any_member() -> None:
    received: list[HephMessage] = []
    heph = RawUdp()
    try:
        async with Node(heph_listeners(heph_json=["a", "b"], heph_delivery="to_all",
                                       heph_with_source=True)) as node:
            node.spawn(answering(received, ["from a"]), name="a")
            node.spawn(answering(received, ["from b"]), name="b")
            heph.send_to(envelope("hello"), node.address("udp"))
            answers = sorted([json.loads((await heph.receive())[0])["message"]
                              for _ in range(2)])
    finally:
        heph.close()
    assert answers == ["from a", "from b"]
    assert [r.message for r in received] == ["hello", "hello"]


async def test_a_heph_reply_has_no_requests() -> None:
    outcome: list[BaseException] = []

    async def asker(ctx: ActorContext) -> None:
        async for received in ctx:
            assert isinstance(received, HephMessage)
            try:
                await received.reply.rpc("no requests in heph", timeout=1.0)
            except ConfigError as exc:
                outcome.append(exc)

    heph = RawUdp()
    try:
        async with Node(heph_listeners(heph_json="inbox", heph_with_source=True)) as node:
            node.spawn(asker, name="inbox")
            heph.send_to(envelope(1), node.address("udp"))
            await wait_for(lambda: len(outcome) == 1, "the refusal")
    finally:
        heph.close()
    assert "heph-json" in str(outcome[0])


@pytest.mark.parametrize(("options", "complaint"), [
    ({"heph_json": []}, "name the actor"),
    ({"heph_json": ["a", ""]}, "name the actor"),
    ({"heph_json": ["a", "a"]}, "more than once"),
    ({"heph_json": ["a", 3]}, "name the actor"),
    ({"heph_json": ["a", "b"]}, "heph_delivery"),
    ({"heph_json": ["a", "b"], "heph_delivery": "broadcast"}, "to_all.*to_one"),
    ({"heph_json": "a", "heph_with_source": "yes"}, "must be true.*or false"),
    ({"heph_delivery": "to_all"}, "heph_json"),
    ({"heph_with_source": True}, "heph_json"),
])
def test_heph_routing_settings_are_checked(options: dict[str, object], complaint: str) -> None:
    config = dataclasses.replace(udp_config("python"), listen={
        "udp": ListenConfig("127.0.0.1", 0, options)})
    with pytest.raises(ConfigError, match=complaint):
        Node(config)


def test_heph_routing_keys_are_read_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[node]\nname = "python"\n\n[listen.udp]\nhost = "127.0.0.1"\nport = 0\n'
                    'heph_json = ["a", "b"]\nheph_delivery = "to_one"\n'
                    'heph_with_source = true\n')
    Node(NodeConfig.from_file(path))
    path.write_text(path.read_text().replace('"to_one"', '"to_none"'))
    with pytest.raises(ConfigError, match=f"{path}.*heph_delivery"):
        Node(NodeConfig.from_file(path))


async def test_a_group_to_all_on_tcp_waits_for_a_full_mailbox_and_loses_nothing() -> None:
    # Over tcp a full mailbox holds the connection back; the copies for the other actors
    # of the group follow once there is room, in order.
    inboxes: dict[str, list[object]] = {"slow": [], "quick": []}
    release = asyncio.Event()

    async def slow(ctx: ActorContext) -> None:
        await release.wait()
        async for message in ctx:
            inboxes["slow"].append(message)

    async with Node(heph_listeners(heph_json=["slow", "quick"],
                                   heph_delivery="to_all")) as node:
        node.spawn(slow, name="slow", mailbox_size=1)
        node.spawn(collector(inboxes["quick"]), name="quick")
        port = int(node.address("tcp").rpartition(":")[2])
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"".join(envelope(n) for n in range(5)))
        await writer.drain()
        await wait_for(lambda: len(inboxes["quick"]) >= 1, "the first copy")
        release.set()
        await wait_for(lambda: all(len(i) == 5 for i in inboxes.values()), "every copy")
        writer.close()
        await writer.wait_closed()
        assert node.stats().total["mailbox_full"] == 0
    assert inboxes == {"slow": [0, 1, 2, 3, 4], "quick": [0, 1, 2, 3, 4]}


async def test_an_answer_after_heph_closed_its_tcp_connection_is_counted_not_raised() -> None:
    got: list[HephMessage] = []
    async with Node(heph_listeners(heph_json="inbox", heph_with_source=True)) as node:
        node.spawn(collector(got), name="inbox")  # type: ignore[arg-type]
        port = int(node.address("tcp").rpartition(":")[2])
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(envelope("bye"))
        await writer.drain()
        await wait_for(lambda: len(got) == 1, "the message")
        writer.close()
        await writer.wait_closed()
        # Until the node has read the connection's end, an answer may still be written.
        async with asyncio.timeout(20):
            while node.stats().total["send_errors"] == 0:
                await got[0].reply.send("too late")
                await asyncio.sleep(0.01)


async def test_to_one_keeps_its_turns_when_an_actor_of_the_group_is_not_there() -> None:
    received: list[object] = []
    sender = RawUdp()
    try:
        async with Node(heph_listeners(heph_json=["a", "absent"],
                                       heph_delivery="to_one")) as node:
            node.spawn(collector(received), name="a")
            for n in range(4):
                sender.send_to(envelope(n), node.address("udp"))
            await wait_for(lambda: node.stats().total["unknown_actor"] == 2, "two unroutable")
            await wait_for(lambda: len(received) == 2, "two delivered")
    finally:
        sender.close()
    assert received == [0, 2]


async def test_a_router_gets_the_heph_message_with_its_source_for_a_missing_actor() -> None:
    routed: list[tuple[object, str]] = []
    heph = RawUdp()
    try:
        async with Node(heph_listeners(heph_json="nobody", heph_with_source=True)) as node:
            node.route(lambda message, source: routed.append((message, source)))
            heph.send_to(envelope("lost?"), node.address("udp"))
            await wait_for(lambda: len(routed) == 1, "the routed message")
            [(message, source)] = routed
            assert isinstance(message, HephMessage) and message.source == heph.url == source
            await message.reply.send("found")
            answer, _ = await heph.receive()
    finally:
        heph.close()
    assert json.loads(answer)["message"] == "found"
