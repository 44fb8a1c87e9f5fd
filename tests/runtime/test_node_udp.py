"""Two nodes in one process over UDP loopback: the node's behaviour end to end."""

from __future__ import annotations

import asyncio
import random
import sys
from dataclasses import dataclass

import pytest

from nodes import RawUdp, udp_config, wait_for, with_peers
from relay_core import (
    ActorContext,
    ConfigError,
    ListenConfig,
    MessageTooLarge,
    Node,
    NodeConfig,
    PeerConfig,
    Rpc,
    UnknownActor,
    message,
)
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet
from relay_core.protocol.wire_read import decode_packet
from relay_core.tools.demo import counter, echo


async def count_of(node: Node, url: str) -> int:
    reply = await node.ref(url).rpc("count?", timeout=5.0)
    assert isinstance(reply, int)
    return reply


async def test_a_message_sent_by_url_reaches_the_named_actor() -> None:
    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(counter, name="counter")
        url = f"{beta.address('udp')}/counter"
        for index in range(10):
            await alpha.ref(url).send({"n": index})
        await wait_for(lambda: beta.stats().total["messages_received"] >= 10, "messages")
        assert await count_of(alpha, url) == 10


async def test_an_rpc_by_peer_name_returns_the_reply() -> None:
    async with Node(udp_config("beta")) as beta:
        beta.spawn(echo, name="echo")
        peers = {"beta": PeerConfig(address=beta.address("udp"))}
        async with Node(with_peers(udp_config("alpha"), **peers)) as alpha:
            reply = await alpha.ref("beta/echo").rpc({"name": "ada", "blob": b"\x00"}, timeout=5.0)
    assert reply == {"name": "ada", "blob": b"\x00"}


async def test_the_bound_address_is_reported_when_the_config_said_port_zero() -> None:
    async with Node(udp_config("alpha")) as node:
        address = node.address("udp")
    assert address.startswith("udp://127.0.0.1:")
    assert int(address.rpartition(":")[2]) > 0


@message("tests.Greeting")
@dataclass
class Greeting:
    name: str
    lang: str = "en"


async def test_a_registered_message_type_arrives_as_that_type() -> None:
    received: list[object] = []

    async def sink(ctx: ActorContext) -> None:
        async for item in ctx:
            received.append(item)

    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(sink, name="sink")
        await alpha.ref(f"{beta.address('udp')}/sink").send(Greeting("ada", "fr"))
        await wait_for(lambda: bool(received), "delivery")
    assert received == [Greeting("ada", "fr")]


async def test_the_router_gets_messages_and_requests_for_unknown_names() -> None:
    routed: list[tuple[object, str]] = []

    def router(item: object, source: str) -> None:
        routed.append((item, source))
        if isinstance(item, Rpc):
            item.respond("routed")

    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.route(router)
        base = beta.address("udp")
        await alpha.ref(f"{base}/nobody").send("hello")
        reply = await alpha.ref(f"{base}/somebody").rpc("question", timeout=5.0)
        await wait_for(lambda: len(routed) == 2, "routing")
    assert reply == "routed"
    assert routed[0] == ("hello", alpha.address("udp"))
    assert isinstance(routed[1][0], Rpc)


async def test_an_unknown_actor_is_counted_and_an_rpc_to_it_fails_typed() -> None:
    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        base = beta.address("udp")
        await alpha.ref(f"{base}/ghost").send("boo")
        with pytest.raises(UnknownActor, match="ghost"):
            await alpha.ref(f"{base}/ghost").rpc("boo", timeout=5.0)
        assert beta.stats().total["unknown_actor"] == 2


async def test_a_message_too_large_for_a_datagram_raises_at_send_naming_size_and_limit() -> None:
    async with Node(udp_config("alpha")) as alpha:
        ref = alpha.ref("udp://127.0.0.1:9/anyone")
        with pytest.raises(MessageTooLarge) as caught:
            await ref.send(b"x" * 70_000)
    assert caught.value.limit == 65507
    assert caught.value.size > 70_000
    assert "tcp" in str(caught.value)


async def test_each_peer_gets_its_own_codec_on_the_wire() -> None:
    cbor_peer, json_peer = RawUdp(), RawUdp()
    try:
        peers = {"c": PeerConfig(address=cbor_peer.url, codec="cbor"),
                 "j": PeerConfig(address=json_peer.url, codec="json")}
        async with Node(with_peers(udp_config("alpha", codec="msgpack"), **peers)) as alpha:
            await alpha.ref("c/actor").send({"to": "cbor"})
            await alpha.ref("j/actor").send({"to": "json"})
            cbor_frames = decode_packet((await cbor_peer.receive())[0]).frames
            json_frames = decode_packet((await json_peer.receive())[0]).frames
    finally:
        cbor_peer.close()
        json_peer.close()
    assert [(f.kind, f.codec, f.target) for f in cbor_frames] == [
        (FrameKind.MESSAGE, "cbor", "actor")]
    assert [(f.kind, f.codec, f.target) for f in json_frames] == [
        (FrameKind.MESSAGE, "json", "actor")]
    assert json_frames[0].payload == b'{"to":"json"}'


async def test_small_messages_to_one_destination_share_datagrams() -> None:
    sink = RawUdp()
    try:
        async with Node(udp_config("alpha")) as alpha:
            ref = alpha.ref(f"{sink.url}/actor")
            for index in range(20):
                ref.try_send(index)
            packet = decode_packet((await sink.receive())[0])
    finally:
        sink.close()
    assert len(packet.frames) == 20


async def test_a_node_keeps_answering_after_garbage_and_mutated_datagrams() -> None:
    attacker = RawUdp()
    rng = random.Random(1234)
    try:
        async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
            beta.spawn(echo, name="echo")
            base = beta.address("udp")
            real = await _capture_one_datagram(alpha, "echo")
            for _ in range(300):
                attacker.send_to(rng.randbytes(rng.randrange(0, 200)), base)
                attacker.send_to(_mutate(real, rng), base)
            assert await alpha.ref(f"{base}/echo").rpc("still there?", timeout=5.0) == (
                "still there?")
            await wait_for(lambda: beta.stats().total["malformed"] > 0, "malformed counted")
    finally:
        attacker.close()


async def _capture_one_datagram(node: Node, target: str) -> bytes:
    catcher = RawUdp()
    try:
        await node.ref(f"{catcher.url}/{target}").send({"some": ["real", 1, 2.5, b"frame"]})
        return (await catcher.receive())[0]
    finally:
        catcher.close()


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        choice = rng.randrange(3)
        if choice == 0 and buffer:
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
        elif choice == 1:
            del buffer[rng.randrange(len(buffer) + 1):]
        else:
            buffer[rng.randrange(len(buffer) + 1):0] = rng.randbytes(rng.randrange(1, 8))
    return bytes(buffer)


async def test_duplicated_datagrams_deliver_each_message_once() -> None:
    received: list[object] = []

    async def sink(ctx: ActorContext) -> None:
        async for item in ctx:
            received.append(item)

    relay = RawUdp()
    try:
        async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
            beta.spawn(sink, name="sink")
            ref = alpha.ref(f"{relay.url}/sink")
            for index in range(50):
                await ref.send(index)
                datagram, _ = await relay.receive()
                relay.send_to(datagram, beta.address("udp"))
                relay.send_to(datagram, beta.address("udp"))
            await wait_for(lambda: beta.stats().total["duplicates"] == 50, "duplicates")
            await asyncio.sleep(0)
    finally:
        relay.close()
    assert received == list(range(50))


async def test_stats_count_per_peer_and_in_total() -> None:
    async with Node(udp_config("beta")) as beta:
        beta.spawn(echo, name="echo")
        peers = {"beta": PeerConfig(address=beta.address("udp"))}
        async with Node(with_peers(udp_config("alpha"), **peers)) as alpha:
            for _ in range(3):
                await alpha.ref("beta/echo").rpc("x", timeout=5.0)
            stats = alpha.stats()
    assert stats.peers["beta"]["messages_sent"] == 3
    assert stats.peers["beta"]["messages_received"] == 3
    assert stats.total["packets_sent"] >= 3
    assert stats.total["bytes_received"] > 0


@pytest.mark.skipif(sys.platform != "linux",
                    reason="only Linux says how many datagrams a socket's buffer dropped")
async def test_what_the_kernel_dropped_before_the_node_read_it_shows_in_its_stats() -> None:
    """Eight senders into one node: each message is delivered or counted as a kernel drop."""
    senders, each = 8, 60
    config = NodeConfig(name="sink", listen={
        "udp": ListenConfig("127.0.0.1", 0, {"receive_buffer": 4096})})
    async with Node(config) as sink:
        sink.spawn(counter, name="counter", mailbox_size=senders * each)
        address = sink.address("udp")
        flood = [RawUdp() for _ in range(senders)]
        try:
            for sequence in range(1, each + 1):  # no await: the node reads nothing meanwhile
                for index, raw in enumerate(flood):
                    frame = Frame(FrameKind.MESSAGE, "json", b"1", "", "counter")
                    packet = encode_packet(1000 + index, sequence, [encode_frame(frame)])
                    raw.send_to(packet, address)
        finally:
            for raw in flood:
                raw.close()

        def accounted() -> int:
            stats = sink.stats()
            return stats.total["messages_received"] + stats.receive_drops.get("udp", 0)

        await wait_for(lambda: accounted() == senders * each, "every message accounted for")
        stats = sink.stats()
    assert stats.receive_drops["udp"] > 0
    assert stats.total["messages_received"] + stats.receive_drops["udp"] == senders * each


def test_unknown_peer_options_for_a_transport_are_refused_when_the_node_is_made() -> None:
    config = with_peers(udp_config("alpha"),
                        beta=PeerConfig(address="udp://127.0.0.1:9", options={"tls": True}))
    with pytest.raises(ConfigError, match=r"peers\.beta.*tls"):
        Node(config)


async def test_a_third_party_compressor_carries_messages_between_nodes() -> None:
    pytest.importorskip("net_relay_zlib", reason="examples/net-relay-zlib is not installed")
    received: list[object] = []
    sink_socket = RawUdp()

    async def sink(ctx: ActorContext) -> None:
        async for item in ctx:
            received.append(item)

    text = "a compressible message " * 40
    try:
        async with Node(udp_config("beta")) as beta:
            beta.spawn(sink, name="sink")
            peers = {"beta": PeerConfig(address=beta.address("udp"), compressor="zlib"),
                     "tap": PeerConfig(address=sink_socket.url, compressor="zlib")}
            async with Node(with_peers(udp_config("alpha"), **peers)) as alpha:
                await alpha.ref("beta/sink").send(text)
                await alpha.ref("tap/sink").send(text)
                frame = decode_packet((await sink_socket.receive())[0]).frames[0]
                await wait_for(lambda: bool(received), "delivery")
    finally:
        sink_socket.close()
    assert received == [text]
    assert frame.compressor == "zlib"
    assert len(frame.payload) < len(text) // 4


async def test_the_stats_actor_answers_unless_turned_off() -> None:
    import dataclasses

    closed = dataclasses.replace(udp_config("closed"), expose_stats=False)
    async with Node(udp_config("open")) as open_node, Node(closed) as closed_node, \
            Node(udp_config("asker")) as asker:
        stats = await asker.ref(f"{open_node.address('udp')}/$stats").rpc(None, timeout=5.0)
        with pytest.raises(UnknownActor):
            await asker.ref(f"{closed_node.address('udp')}/$stats").rpc(None, timeout=5.0)
    assert isinstance(stats, dict) and stats["node"] == "open"


async def test_names_starting_with_a_dollar_are_reserved_for_the_node() -> None:
    async with Node(udp_config("alpha")) as node:
        with pytest.raises(ValueError, match="reserved"):
            node.spawn(echo, name="$mine")
