"""A node's own packets sent back at it are dropped, sealed or not, and counted."""

from __future__ import annotations

import dataclasses

from nodes import LossyRelay, RawUdp, collector, udp_config, wait_for
from relay_core import ListenConfig, Node, NodeConfig, PeerConfig

KEY = "11" * 32



async def test_sealed_packets_reflected_to_their_sender_are_not_delivered_to_it() -> None:
    received_a: list[object] = []
    received_b: list[object] = []
    listen = {"udp": ListenConfig("127.0.0.1", 0, {"keys": {"7": KEY}})}
    async with Node(NodeConfig(name="b", listen=listen)) as b:
        b.spawn(collector(received_b), name="sink")
        # The "mirror" forwards A's packets to B, and keeps them to send back at A.
        async with LossyRelay(b.address("udp")) as mirror:
            peers = {"b": PeerConfig(address=mirror.url, options={"keys": {"7": KEY}})}
            async with Node(NodeConfig(name="a", listen=listen, peers=peers)) as a:
                a.spawn(collector(received_a), name="sink")
                for index in range(20):
                    await a.ref("b/sink").send(index)
                await wait_for(lambda: len(received_b) == 20, "delivery to B")
                sent = list(mirror.captured["server"])  # the hello, then the messages
                for packet in sent:
                    mirror.socket.send_to(packet, a.address("udp"))
                await wait_for(lambda: a.stats().total["reflected"] == len(sent),
                               "every reflection")
                assert received_a == []


async def test_plain_packets_reflected_to_their_sender_are_not_delivered_to_it() -> None:
    mirror = RawUdp()
    received: list[object] = []
    try:
        config = dataclasses.replace(udp_config("a"),
                                     peers={"mirror": PeerConfig(address=mirror.url)})
        async with Node(config) as a:
            a.spawn(collector(received), name="sink")
            await a.ref("mirror/sink").send("to the mirror")
            packet, _ = await mirror.receive()
            mirror.send_to(packet, a.address("udp"))
            await wait_for(lambda: a.stats().total["reflected"] == 1, "the reflection")
            assert received == []
    finally:
        mirror.close()
