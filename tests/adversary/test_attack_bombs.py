"""zstd bombs and byte budgets: what a packet's frames may expand to, and what a mailbox
and the whole node may hold, in bytes.

The attacker is a raw loopback UDP socket writing packets with relay_core.protocol.wire:
frames whose few compressed bytes decompress to a whole ``max_message_size``
each, as many as a datagram holds. The nodes here allow 1 MiB messages, so that
a bomb's figures stay small; benchmarks/attacks/bombs.py runs the same attacks at
the default 16 MiB.
"""

from __future__ import annotations

import asyncio
import itertools

import msgpack
import pytest
import zstandard

from nodes import RawUdp, udp_config, wait_for, with_peers
from relay_core import ActorContext, ListenConfig, Node, NodeConfig, Overloaded, PeerConfig, Rpc
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet

MIB = 1024 * 1024
ATTACKER_INCARNATION = 0xB0B
sequences = itertools.count(1)


def expanding_payload(size: int) -> bytes:
    """A zstd frame of a few dozen bytes whose msgpack content is ``size`` bytes long."""
    content = msgpack.packb(b"\0" * (size - 5))  # a bin 32 header takes 5 bytes
    assert len(content) == size
    return zstandard.ZstdCompressor(write_content_size=True).compress(content)


def bomb(target: str, size: int = MIB) -> bytes:
    return encode_frame(Frame(FrameKind.MESSAGE, "msgpack", expanding_payload(size), "zstd",
                              target))


def packet(frames: list[bytes]) -> bytes:
    return encode_packet(ATTACKER_INCARNATION, next(sequences), frames)


def victim_config(**settings: object) -> NodeConfig:
    return udp_config("victim", max_message_size=MIB, **settings)


class Gate:
    """Actors that take nothing until the gate opens: their mailboxes fill."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.taken = 0

    async def actor(self, ctx: ActorContext) -> None:
        await self.open.wait()
        async for message in ctx:
            if isinstance(message, Rpc):
                message.respond(self.taken)
            else:
                self.taken += 1


async def echo(ctx: ActorContext) -> None:
    async for message in ctx:
        if isinstance(message, Rpc):
            message.respond(message.request)


async def answers(victim: Node) -> bool:
    async with Node(udp_config("prober")) as prober:
        return await prober.ref(f"{victim.address('udp')}/echo").rpc("ping", timeout=10.0) == "ping"


async def test_a_datagram_of_bombs_for_an_unknown_actor_is_decompressed_only_within_its_budget(
) -> None:
    attacker = RawUdp()
    try:
        async with Node(victim_config()) as victim:
            victim.spawn(echo, name="echo")
            attacker.send_to(packet([bomb("nobody")] * 60), victim.address("udp"))
            await wait_for(lambda: victim.stats().total["frames_received"] == 60, "the bombs")
            total = victim.stats().total
            # One frame's worth of the packet is decompressed; the other 59 are not.
            assert (total["unknown_actor"], total["over_budget"]) == (1, 59)
            assert total["oversize"] == 0
            assert await answers(victim)
    finally:
        attacker.close()


async def test_frames_past_a_packets_budget_are_refused_before_any_decompression() -> None:
    attacker = RawUdp()
    broken = expanding_payload(MIB)
    broken = broken[: len(broken) // 2]  # declares 1 MiB, then breaks off: corrupt if read
    frames = [bomb("nobody")] + [
        encode_frame(Frame(FrameKind.MESSAGE, "msgpack", broken, "zstd", "nobody"))] * 5
    try:
        async with Node(victim_config()) as victim:
            attacker.send_to(packet(frames), victim.address("udp"))
            await wait_for(lambda: victim.stats().total["frames_received"] == 6, "the frames")
            total = victim.stats().total
            assert (total["over_budget"], total["undecodable"]) == (5, 0)
    finally:
        attacker.close()


async def test_a_stream_of_small_bomb_datagrams_is_decompressed_only_at_the_nodes_rate() -> None:
    # One bomb a datagram keeps within every packet's budget: what bounds the CPU a
    # flood of them costs is the node's decompression rate (1 MiB/s here: 20 datagrams
    # sent at once could all pass only if the node took over 19 s to read them).
    attacker = RawUdp()
    try:
        async with Node(victim_config(max_decompression_rate=MIB)) as victim:
            victim.spawn(echo, name="echo")
            for _ in range(20):
                attacker.send_to(packet([bomb("nobody")]), victim.address("udp"))
            await wait_for(lambda: victim.stats().total["frames_received"] == 20, "the bombs")
            total = victim.stats().total
            assert total["decompression_limited"] >= 1
            assert total["unknown_actor"] + total["decompression_limited"] == 20
            assert total["over_budget"] == 0
            assert await answers(victim)
    finally:
        attacker.close()


async def test_bombs_for_a_live_actor_fill_its_mailbox_only_up_to_its_bytes() -> None:
    attacker, gate = RawUdp(), Gate()
    try:
        async with Node(victim_config(mailbox_bytes=2 * MIB)) as victim:
            victim.spawn(echo, name="echo")
            victim.spawn(gate.actor, name="held")
            for _ in range(5):
                attacker.send_to(packet([bomb("held")] * 10), victim.address("udp"))
            await wait_for(lambda: victim.stats().total["frames_received"] == 50, "the bombs")
            total = victim.stats().total
            assert len(victim.mailboxes["held"]) == 2
            assert (total["mailbox_full"], total["over_budget"]) == (3, 45)
            assert await answers(victim)
            gate.open.set()
            await wait_for(lambda: gate.taken == 2, "the two messages kept")
    finally:
        attacker.close()


async def test_a_request_past_a_mailboxs_bytes_is_refused_as_overloaded() -> None:
    attacker, gate = RawUdp(), Gate()
    try:
        async with Node(victim_config(mailbox_bytes=MIB)) as victim:
            victim.spawn(gate.actor, name="held")
            attacker.send_to(packet([bomb("held")]), victim.address("udp"))
            await wait_for(lambda: len(victim.mailboxes["held"]) == 1, "a full mailbox")
            caller_config = udp_config("caller", max_message_size=MIB, compressor="zstd")
            async with Node(caller_config) as caller:
                ref = caller.ref(f"{victim.address('udp')}/held")
                with pytest.raises(Overloaded):
                    await ref.rpc(b"\0" * (MIB // 2), timeout=10.0)
            assert victim.stats().total["mailbox_full"] == 1
            gate.open.set()
    finally:
        attacker.close()


async def test_all_mailboxes_together_hold_at_most_the_nodes_buffered_bytes() -> None:
    attacker, gate = RawUdp(), Gate()
    try:
        async with Node(victim_config(mailbox_bytes=2 * MIB,
                                      max_buffered_bytes=3 * MIB)) as victim:
            victim.spawn(gate.actor, name="first")
            victim.spawn(gate.actor, name="second")
            for target in ["first", "second"] * 4:
                attacker.send_to(packet([bomb(target)]), victim.address("udp"))
            await wait_for(lambda: victim.stats().total["frames_received"] == 8, "the bombs")
            held = [len(victim.mailboxes[name]) for name in ("first", "second")]
            assert sum(held) == 3
            assert victim.stats().total["mailbox_full"] == 5
            gate.open.set()
            await wait_for(lambda: gate.taken == 3, "the messages kept")
    finally:
        attacker.close()


async def test_a_tcp_sender_past_a_mailboxs_bytes_waits_and_loses_nothing() -> None:
    gate = Gate()
    server_config = NodeConfig(name="server", max_message_size=MIB, mailbox_bytes=2 * MIB,
                               listen={"tcp": ListenConfig("127.0.0.1", 0)})
    async with Node(server_config) as server:
        server.spawn(gate.actor, name="held")
        mailbox = server.mailboxes["held"]
        async with Node(NodeConfig(name="client", max_message_size=MIB, listen={})) as client:
            ref = client.ref(f"{server.address('tcp')}/held")
            for _ in range(12):
                await ref.send(b"\1" * (MIB // 2 - 5))  # half a MiB once encoded
            await wait_for(lambda: len(mailbox) == 4, "a full mailbox")
            for _ in range(20):  # turns of the loop in which more could arrive
                await asyncio.sleep(0.01)
            assert len(mailbox) == 4  # 2 MiB: the source waits
            gate.open.set()
            await wait_for(lambda: gate.taken == 12, "every message")
            assert server.stats().total["mailbox_full"] == 0


async def test_a_burst_of_highly_compressible_honest_messages_is_all_delivered() -> None:
    gate = Gate()
    gate.open.set()
    async with Node(victim_config(compressor="zstd")) as receiver:
        receiver.spawn(gate.actor, name="counter")
        sender_config = with_peers(
            udp_config("sender", max_message_size=MIB, compressor="zstd"),
            receiver=PeerConfig(receiver.address("udp")))
        async with Node(sender_config) as sender:
            ref = sender.ref("receiver/counter")
            for _ in range(40):  # one turn: the coalescer groups them
                await ref.send(b"\0" * (256 * 1024))  # a few dozen bytes once compressed
            await wait_for(lambda: gate.taken == 40, "every message")
            assert receiver.stats().total["over_budget"] == 0
            assert sender.stats().total["packets_sent"] >= 10  # at most 4 per packet
