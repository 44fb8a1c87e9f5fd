"""A node's own packets sent back at it are dropped, sealed or not, and counted."""

from __future__ import annotations

import dataclasses

from nodes import RawUdp, udp_config, wait_for
from relay_core import ActorContext, ListenConfig, Node, NodeConfig, PeerConfig

KEY = "11" * 32


def recording(into: list[object]):  # type: ignore[no-untyped-def]
    async def actor(ctx: ActorContext) -> None:
        async for message in ctx:
            into.append(message)
    return actor


async def test_sealed_packets_reflected_to_their_sender_are_not_delivered_to_it() -> None:
    mirror = RawUdp()  # the "peer": it sends every packet back where it came from
    received: list[object] = []
    listen = {"udp": ListenConfig("127.0.0.1", 0, {"keys": {"7": KEY}})}
    peers = {"mirror": PeerConfig(address=mirror.url, options={"keys": {"7": KEY}})}
    try:
        async with Node(NodeConfig(name="a", listen=listen, peers=peers)) as a:
            a.spawn(recording(received), name="sink")
            for index in range(20):
                await a.ref("mirror/sink").send(index)
            await wait_for(lambda: a.stats().total["packets_sent"] > 0, "the packets leave")
            sent = a.stats().total["packets_sent"]  # the messages may share datagrams
            for _ in range(sent):
                packet, _ = await mirror.receive()
                mirror.send_to(packet, a.address("udp"))
            await wait_for(lambda: a.stats().total["reflected"] == sent, "every reflection")
            assert received == []
    finally:
        mirror.close()


async def test_plain_packets_reflected_to_their_sender_are_not_delivered_to_it() -> None:
    mirror = RawUdp()
    received: list[object] = []
    try:
        config = dataclasses.replace(udp_config("a"),
                                     peers={"mirror": PeerConfig(address=mirror.url)})
        async with Node(config) as a:
            a.spawn(recording(received), name="sink")
            await a.ref("mirror/sink").send("to the mirror")
            packet, _ = await mirror.receive()
            mirror.send_to(packet, a.address("udp"))
            await wait_for(lambda: a.stats().total["reflected"] == 1, "the reflection")
            assert received == []
    finally:
        mirror.close()
