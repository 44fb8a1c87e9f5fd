"""Attacks on the serving side of RPC: requests nobody answers, and cached replies
retried by someone else or by a tiny packet.

The attacker is a raw UDP socket writing packets with relay_core.protocol.wire: it can name
any incarnation, sequence and call id, which is all an unsealed packet carries.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from nodes import LossyRelay, RawUdp, udp_config, wait_for
from relay_core import ActorContext, ListenConfig, Node, NodeConfig, PeerConfig, RemoteError, Rpc
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet
from relay_core.protocol.wire_read import decode_packet

ATTACKER_INCARNATION = 0x5EED
BIG_REPLY = "x" * 60_000


def request_packet(sequence: int, call_id: int, target: str, payload: bytes = b'"hi"',
                   deadline_ms: int | None = 5000,
                   incarnation: int = ATTACKER_INCARNATION) -> bytes:
    frame = Frame(FrameKind.REQUEST, "json", payload, target=target, call_id=call_id,
                  deadline_ms=deadline_ms, request_id=f"r{call_id}")
    return encode_packet(incarnation, sequence, [encode_frame(frame)])


def requests_in_hand(node: Node) -> int:
    return len(node._dispatcher._server.active)  # the table under attack


async def drain(socket: RawUdp, quiet: float = 0.3) -> list[bytes]:
    """Every datagram that arrives until none has for ``quiet`` seconds."""
    received = []
    while True:
        try:
            async with asyncio.timeout(quiet):
                data, _ = await socket.receive_forever()
        except TimeoutError:
            return received
        received.append(data)


# -- requests nobody answers ---------------------------------------------------------


async def test_a_flood_of_unanswered_requests_leaves_the_table_at_its_bound_counted() -> None:
    held: list[Rpc] = []

    async def hoarder(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                held.append(message)

    async def echo(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                message.respond(message.request)

    bound, flood = 64, 400
    attacker = RawUdp()
    try:
        async with Node(udp_config("victim", max_active_requests=bound)) as victim, \
                Node(udp_config("prober")) as prober:
            victim.spawn(hoarder, name="hoarder", mailbox_size=flood * 2)
            victim.spawn(echo, name="echo")
            for call_id in range(1, flood + 1):
                attacker.send_to(request_packet(call_id, call_id, "hoarder", deadline_ms=None),
                                 victim.address("udp"))
                if call_id % 10 == 0:
                    # A few at a time, each batch taken before the next: on a busy
                    # machine a burst would overflow the socket buffer and be lost.
                    await wait_for(lambda sent=call_id: len(held) == sent,
                                   "the hoarder to take every request sent")
            assert requests_in_hand(victim) <= bound
            assert victim.stats().total["requests_evicted"] == flood - bound
            assert held[0].cancelled and not held[-1].cancelled
            held[0].respond("too late")  # dropped: nothing is sent for an evicted request
            assert await prober.ref(f"{victim.address('udp')}/echo").rpc("ok", timeout=5.0) == "ok"
            assert not await drain(attacker, quiet=0.2)
    finally:
        attacker.close()


async def test_a_request_with_no_or_a_huge_deadline_gets_the_nodes_maximum() -> None:
    seen: list[float] = []

    async def patient(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                seen.append(message.time_left)
                message.respond(None)

    attacker = RawUdp()
    try:
        async with Node(udp_config("victim")) as victim:
            victim.spawn(patient, name="patient")
            for sequence, deadline_ms in enumerate((None, 2**32 - 2, 3_600_000), start=1):
                attacker.send_to(request_packet(sequence, sequence, "patient",
                                                deadline_ms=deadline_ms), victim.address("udp"))
            await wait_for(lambda: len(seen) == 3, "three requests handled")
            maximum = victim.config.max_request_deadline
    finally:
        attacker.close()
    assert maximum == 300.0
    assert all(0 < left <= maximum for left in seen), seen


# -- cached replies ------------------------------------------------------------------


async def big_reply_node_and_first_answer(caller: RawUdp, victim: Node) -> bytes:
    async def generous(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                message.respond(BIG_REPLY)

    victim.spawn(generous, name="generous")
    caller.send_to(request_packet(1, 7, "generous", payload=b"1"), victim.address("udp"))
    reply, _ = await caller.receive()
    assert len(reply) > len(BIG_REPLY)
    return reply


async def test_forged_retries_of_a_cached_reply_from_another_source_get_nothing() -> None:
    caller, attacker = RawUdp(), RawUdp()
    try:
        async with Node(udp_config("victim")) as victim:
            await big_reply_node_and_first_answer(caller, victim)
            for sequence in range(2, 22):
                attacker.send_to(request_packet(sequence, 7, "generous", payload=b"1"),
                                 victim.address("udp"))
            await wait_for(lambda: victim.stats().total["duplicates"] == 20,
                           "twenty retries seen")
            refused = victim.stats().total["replies_not_resent"]
            reflected = await drain(attacker) + await drain(caller, quiet=0.05)
    finally:
        caller.close()
        attacker.close()
    assert reflected == []
    assert refused == 20


async def test_retries_from_the_same_source_draw_at_most_three_times_their_bytes() -> None:
    caller = RawUdp()
    try:
        async with Node(udp_config("victim")) as victim:
            await big_reply_node_and_first_answer(caller, victim)
            sent = 0
            for sequence in range(2, 22):
                packet = request_packet(sequence, 7, "generous", payload=b"1")
                sent += len(packet)
                caller.send_to(packet, victim.address("udp"))
            await wait_for(lambda: victim.stats().total["duplicates"] == 20,
                           "twenty retries seen")
            answers = await drain(caller)
            refused = victim.stats().total["replies_not_resent"]
    finally:
        caller.close()
    assert sum(len(answer) for answer in answers) <= 3 * sent
    assert refused == 20
    for answer in answers:  # a small error that says why, never the 60 KB reply
        frame = decode_packet(answer).frames[0]
        assert frame.kind is FrameKind.ERROR and frame.call_id == 7
        assert b"reply_not_resent" in frame.payload


async def test_an_honest_retry_from_the_same_source_gets_its_reply_again() -> None:
    caller = RawUdp()

    async def echo(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                message.respond(message.request)

    try:
        async with Node(udp_config("victim")) as victim:
            victim.spawn(echo, name="echo")
            first_try = request_packet(1, 9, "echo", payload=b'"again"')
            retry = request_packet(2, 9, "echo", payload=b'"again"')
            caller.send_to(first_try, victim.address("udp"))
            first, _ = await caller.receive()
            caller.send_to(retry, victim.address("udp"))
            second, _ = await caller.receive()
            refused = victim.stats().total["replies_not_resent"]
    finally:
        caller.close()
    assert decode_packet(second).frames == decode_packet(first).frames
    assert decode_packet(second).frames[0].payload == b'"again"'
    assert refused == 0


async def test_an_honest_caller_whose_large_reply_was_lost_is_told_it_will_not_come_again(
) -> None:
    runs = 0

    async def generous(ctx: ActorContext) -> None:
        nonlocal runs
        async for message in ctx:
            if isinstance(message, Rpc):
                runs += 1
                message.respond(BIG_REPLY)

    async with Node(udp_config("victim")) as victim:
        victim.spawn(generous, name="generous")
        async with LossyRelay(victim.address("udp"), drop_to_client={1}) as relay, \
                Node(udp_config("caller")) as caller:
            with pytest.raises(RemoteError) as caught:
                await caller.ref(f"{relay.url}/generous").rpc(1, timeout=10.0, retries=3)
    assert caught.value.remote_type == "ReplyNotResent"
    assert runs == 1


async def test_a_sealed_caller_whose_large_reply_was_lost_gets_it_on_its_retry() -> None:
    """A sealed retry is authenticated (and a replay of it is a duplicate): no amplification
    to fear, so the 3x bound of plain datagrams does not hold it back."""
    runs = 0
    keys = {"keys": {"7": "11" * 32}}

    async def generous(ctx: ActorContext) -> None:
        nonlocal runs
        async for message in ctx:
            if isinstance(message, Rpc):
                runs += 1
                message.respond(BIG_REPLY)

    victim_config = NodeConfig(name="victim", listen={"udp": ListenConfig("127.0.0.1", 0, keys)})
    async with Node(victim_config) as victim:
        victim.spawn(generous, name="generous")
        async with LossyRelay(victim.address("udp"), drop_to_client={1}) as relay:
            caller_config = dataclasses.replace(
                udp_config("caller"), peers={"victim": PeerConfig(address=relay.url, options=keys)})
            async with Node(caller_config) as caller:
                reply = await caller.ref("victim/generous").rpc(1, timeout=10.0, retries=3)
    assert reply == BIG_REPLY
    assert runs == 1
