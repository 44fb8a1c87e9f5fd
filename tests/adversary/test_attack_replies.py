"""Forged replies: a reply is taken only from where its request went, and nobody who has
not seen a request can name its call.

The attacker is a raw loopback UDP socket that writes RESPONSE frames with
call ids of its choosing. It may know the call id (it read a request as the
peer that received it), or spray ids hoping to hit one.
"""

from __future__ import annotations

import asyncio
import itertools

import msgpack

from nodes import RawUdp, udp_config, wait_for
from relay_core import ActorContext, ListenConfig, Node, NodeConfig, Rpc, RpcTimeout
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet
from relay_core.protocol.wire_read import decode_packet

ATTACKER_INCARNATION = 0xBAD
sequences = itertools.count(1)


def response(call_id: int, value: object) -> bytes:
    frame = Frame(FrameKind.RESPONSE, "msgpack", msgpack.packb(value), call_id=call_id)
    return encode_packet(ATTACKER_INCARNATION, next(sequences), [encode_frame(frame)])


async def held(ctx: ActorContext) -> None:
    """Takes requests and never answers them: the calls wait while the attacker works."""
    async for _ in ctx:
        pass


async def test_a_reply_from_another_address_does_not_answer_a_call_even_with_its_call_id() -> None:
    peer, attacker = RawUdp(), RawUdp()
    try:
        async with Node(udp_config("caller")) as caller:
            call = asyncio.ensure_future(caller.ref(f"{peer.url}/service").rpc("q", timeout=30.0))
            request, reply_to = await peer.receive()
            call_id = decode_packet(request).frames[0].call_id
            attacker.send_to(response(call_id, "forged"), caller.address("udp"))
            await wait_for(lambda: caller.stats().total["forged_replies"] == 1, "forged reply")
            assert not call.done()
            peer.sock.sendto(response(call_id, "genuine"), reply_to)
            assert await call == "genuine"
    finally:
        peer.close()
        attacker.close()


async def test_call_ids_cannot_be_guessed_from_a_fresh_node() -> None:
    peer = RawUdp()
    try:
        first_ids = []
        for _ in range(2):
            async with Node(udp_config("caller")) as caller:
                call = asyncio.ensure_future(caller.ref(f"{peer.url}/x").rpc("q", timeout=30.0))
                frame = decode_packet((await peer.receive())[0]).frames[0]
                while frame.kind is not FrameKind.REQUEST:  # the last round's cancel
                    frame = decode_packet((await peer.receive())[0]).frames[0]
                first_ids.append(frame.call_id)
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
        assert all(call_id > 1 << 32 for call_id in first_ids)  # not a count from 1
        assert first_ids[0] != first_ids[1]
    finally:
        peer.close()


async def test_replies_sprayed_at_the_udp_listener_do_not_answer_calls_made_over_tcp() -> None:
    server_config = NodeConfig(name="server", listen={"tcp": ListenConfig("127.0.0.1", 0)})
    attacker = RawUdp()
    try:
        async with Node(server_config) as server:
            server.spawn(held, name="held")
            async with Node(udp_config("caller")) as caller:
                ref = caller.ref(f"{server.address('tcp')}/held")
                calls = [asyncio.ensure_future(ref.rpc(n, timeout=2.0)) for n in range(5)]
                await wait_for(lambda: server.stats().total["messages_received"] == 5, "requests")
                for call_id in range(1, 2001):
                    attacker.send_to(response(call_id, "forged"), caller.address("udp"))
                    if call_id % 200 == 0:
                        await asyncio.sleep(0)  # let the node read what the socket holds
                outcomes = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        attacker.close()
    assert all(isinstance(outcome, RpcTimeout) for outcome in outcomes), outcomes


async def test_a_genuine_reply_still_answers_after_forged_ones() -> None:
    async def echo(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                message.respond(message.request)

    attacker = RawUdp()
    try:
        async with Node(udp_config("server")) as server:
            server.spawn(echo, name="echo")
            async with Node(udp_config("caller")) as caller:
                for call_id in range(1, 101):
                    attacker.send_to(response(call_id, "forged"), caller.address("udp"))
                assert await caller.ref(f"{server.address('udp')}/echo").rpc(
                    "real", timeout=10.0) == "real"
    finally:
        attacker.close()
