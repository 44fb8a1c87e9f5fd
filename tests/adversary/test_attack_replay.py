"""Sealed udp: a captured packet is delivered once, at the node it was sealed for, and never again.

A recording relay sits between a sealed sender A and a sealed receiver B (the
same pre-shared key everywhere) and keeps every datagram A sends. The attacker
then replays them: to C, another holder of the key, and to B after B restarted
(sent back to A, they are reflections: tests/adversary/test_attack_reflection.py).
None of them is delivered anywhere, no handler runs twice, and every refusal is
counted. A sender also finds a restarted receiver again by itself.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from nodes import WAIT_LIMIT, LossyRelay, RawUdp, wait_for
from relay_core import (
    ActorContext,
    LinkBusy,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
    PeerUnreachable,
    Rpc,
)

KEY = "11" * 32
SEALED_DATA = 0x01
"""The packet flags of a sealed packet that carries frames (not a handshake)."""


def sealed_node(name: str, port: int = 0, **peers: str) -> NodeConfig:
    """A node whose udp listener takes only sealed packets, with sealed peers at these URLs."""
    listen = {"udp": ListenConfig("127.0.0.1", port, {"keys": {"7": KEY}})}
    return NodeConfig(name=name, listen=listen, peers={
        peer: PeerConfig(address=url, options={"keys": {"7": KEY}}) for peer, url in peers.items()})


def serving(runs: list[object]):  # type: ignore[no-untyped-def]
    """An actor that records every message and every request it runs, and echoes requests."""
    async def actor(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                runs.append(message.request)
                message.respond(message.request)
            else:
                runs.append(message)
    return actor


def port_of(node: Node) -> int:
    return int(node.address("udp").rpartition(":")[2])


def data_packets(packets: list[bytes]) -> int:
    return sum(1 for packet in packets if packet[3] == SEALED_DATA)


async def exchange(a: Node, target: str, runs: list[object]) -> None:
    """Ten messages and three calls from A; wait until all thirteen ran."""
    ref = a.ref(target)
    for index in range(10):
        await ref.send(index)
    for index in range(3):
        assert await ref.rpc(f"call {index}", timeout=10.0) == f"call {index}"
    await wait_for(lambda: len(runs) == 13, "the exchange")


async def replay(packets: list[bytes], victim: Node) -> None:
    """Send ``packets`` to ``victim`` from an attacker's socket; wait until it read them all."""
    attacker = RawUdp()
    try:
        before = victim.stats().total["packets_received"]
        for packet in packets:
            attacker.send_to(packet, victim.address("udp"))
        await wait_for(lambda: victim.stats().total["packets_received"] == before + len(packets),
                       "the replayed packets")
    finally:
        attacker.close()


async def test_sealed_packets_to_one_node_replayed_to_another_key_holder_are_not_delivered() -> None:
    runs_b: list[object] = []
    runs_c: list[object] = []
    async with Node(sealed_node("b")) as b, Node(sealed_node("c")) as c:
        b.spawn(serving(runs_b), name="service")
        c.spawn(serving(runs_c), name="service")
        async with LossyRelay(b.address("udp")) as relay, \
                Node(sealed_node("a", b=relay.url)) as a:
            await exchange(a, "b/service", runs_b)
            captured = list(relay.captured["server"])
        await replay(captured, c)
        assert runs_c == []
        assert c.stats().total["unauthenticated"] == data_packets(captured) > 0
        assert c.stats().total["messages_received"] == 0


async def test_sealed_packets_replayed_after_the_receiver_restarts_run_nothing_again() -> None:
    runs_before: list[object] = []
    runs_after: list[object] = []
    async with Node(sealed_node("b")) as b:
        b.spawn(serving(runs_before), name="service")
        port = port_of(b)
        async with LossyRelay(b.address("udp")) as relay, \
                Node(sealed_node("a", b=relay.url)) as a:
            await exchange(a, "b/service", runs_before)
            captured = list(relay.captured["server"])
    async with Node(sealed_node("b", port)) as restarted:
        restarted.spawn(serving(runs_after), name="service")
        await replay(captured, restarted)
        assert runs_after == []
        assert restarted.stats().total["unauthenticated"] == data_packets(captured) > 0
        assert restarted.stats().total["messages_received"] == 0


async def test_a_sender_learns_that_its_receiver_restarted_and_gets_through_again() -> None:
    runs_before: list[object] = []
    runs_after: list[object] = []
    async with Node(sealed_node("b")) as b:
        b.spawn(serving(runs_before), name="service")
        port = port_of(b)
        address = b.address("udp")
        async with Node(sealed_node("a", b=address)) as a:
            await exchange(a, "b/service", runs_before)
            await b.close()
            async with Node(sealed_node("b", port)) as restarted:
                restarted.spawn(serving(runs_after), name="service")
                ref = a.ref("b/service")
                # Sealed for the incarnation that is gone: lost, and counted where it arrived.
                await ref.send("into the gap")
                await wait_for(lambda: restarted.stats().total["unauthenticated"] == 1,
                               "the packet sealed for the old incarnation")
                async with asyncio.timeout(WAIT_LIMIT):  # the answer to it teaches A
                    while not runs_after:
                        await ref.send("after")
                        await asyncio.sleep(0.02)
                assert await ref.rpc("call", timeout=10.0) == "call"
                assert "into the gap" not in runs_after


async def test_a_call_made_after_the_receiver_restarted_gets_through_by_its_retries() -> None:
    runs: list[object] = []
    async with Node(sealed_node("b")) as b:
        b.spawn(serving(runs), name="service")
        port = port_of(b)
        async with Node(sealed_node("a", b=b.address("udp"))) as a:
            assert await a.ref("b/service").rpc("before", timeout=10.0) == "before"
            await b.close()
            async with Node(sealed_node("b", port)) as restarted:
                restarted.spawn(serving(runs), name="service")
                reply = await a.ref("b/service").rpc("after", timeout=10.0, retries=4)
                assert reply == "after"
                assert runs == ["before", "after"]


async def test_a_sealed_peer_that_never_answers_the_handshake_counts_as_unreachable() -> None:
    silent = RawUdp()  # takes every datagram, answers none
    try:
        async with Node(sealed_node("a", b=silent.url)) as a:
            ref = a.ref("b/service")
            with pytest.raises(PeerUnreachable, match="handshake"):
                await ref.rpc("anyone?", timeout=30.0)
            hellos = a.stats().total["packets_sent"]
            assert hellos > 1  # resent while unanswered
            assert all(is_hello(packet) for packet in await received(silent, hellos))
            assert a.stats().total["peer_unreachable"] == 1  # the call's request, never sent
    finally:
        silent.close()


async def test_sealed_messages_queued_during_the_handshake_are_delivered_in_order() -> None:
    runs: list[object] = []
    async with Node(sealed_node("b")) as b:
        b.spawn(serving(runs), name="service")
        async with Node(sealed_node("a", b=b.address("udp"))) as a:
            ref = a.ref("b/service")
            for index in range(50):
                ref.try_send(index)
            await wait_for(lambda: len(runs) == 50, "the queued messages")
            assert runs == list(range(50))


def is_hello(packet: bytes) -> bool:
    return packet[:4] == b"NR\x01\x03"


async def received(socket: RawUdp, count: int) -> list[bytes]:
    return [(await socket.receive())[0] for _ in range(count)]


async def test_key_rotation_works_across_the_handshake() -> None:
    old, new = "11" * 32, "22" * 32
    runs: list[object] = []
    listen = {"udp": ListenConfig("127.0.0.1", 0, {"keys": {"1": old, "2": new}})}
    async with Node(NodeConfig(name="b", listen=listen)) as b:
        b.spawn(serving(runs), name="service")
        for send_key_id in (1, 2):
            peer = PeerConfig(address=b.address("udp"),
                              options={"keys": {"1": old, "2": new}, "send_key_id": send_key_id})
            config = dataclasses.replace(sealed_node(f"a{send_key_id}"), peers={"b": peer})
            async with Node(config) as a:
                assert await a.ref("b/service").rpc(send_key_id, timeout=10.0) == send_key_id
        assert runs == [1, 2]
        assert b.stats().total["unauthenticated"] == 0


async def test_a_replayed_hello_draws_answers_no_larger_than_itself_and_at_most_8_a_second() -> None:
    async with Node(sealed_node("b")) as b:
        b.spawn(serving([]), name="service")
        async with LossyRelay(b.address("udp")) as relay, \
                Node(sealed_node("a", b=relay.url)) as a:
            await a.ref("b/service").send("hello")
            hello = relay.captured["server"][0]
        assert is_hello(hello)
        attacker = RawUdp()
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            sent_before = b.stats().total["packets_sent"]
            received_before = b.stats().total["packets_received"]
            for _ in range(100):
                attacker.send_to(hello, b.address("udp"))
            await wait_for(lambda: b.stats().total["packets_received"] == received_before + 100,
                           "the hellos")
            seconds = loop.time() - started
            answers = b.stats().total["packets_sent"] - sent_before
            assert answers + b.stats().total["handshake_answers_limited"] == 100
            assert 1 <= answers <= 8 * (int(seconds) + 2)  # each second began counts
            for _ in range(answers):
                answer, _ = await attacker.receive()
                assert len(answer) <= len(hello)
        finally:
            attacker.close()


async def test_what_waits_for_a_handshake_is_bounded_and_try_send_says_so() -> None:
    silent = RawUdp()
    try:
        # The queue holds what a parked source's backlog does: max(4 x 64 KiB, 1 MiB).
        config = dataclasses.replace(sealed_node("a", b=silent.url), max_message_size=65_536)
        async with Node(config) as a:
            ref, payload, queued = a.ref("b/service"), "x" * 10_000, 0
            with pytest.raises(LinkBusy, match="not ready yet"):
                for _ in range(1_000):
                    ref.try_send(payload)
                    queued += 1
            assert 1024 * 1024 // 10_100 <= queued < 1_000
    finally:
        silent.close()
