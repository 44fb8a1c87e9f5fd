"""Forged cancels: a request is cancelled only by a cancel from where it came.

Over plain udp anyone can write a CANCEL naming a caller's incarnation and a
call id; it must not cancel a request that came from another address.
"""

from __future__ import annotations

import asyncio

from nodes import RawUdp, udp_config, wait_for
from relay_core import ActorContext, Node, Rpc
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet

CALLER_INCARNATION = 0xC0FFEE
CALL_ID = 0x5EC2E7


def packet(sequence: int, frame: Frame) -> bytes:
    return encode_packet(CALLER_INCARNATION, sequence, [encode_frame(frame)])


async def test_a_cancel_from_another_address_does_not_cancel_the_request() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(ctx: ActorContext) -> None:
        async def work(request: object) -> object:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return request

        async for message in ctx:
            assert isinstance(message, Rpc)
            await message.handle(work)

    caller, attacker = RawUdp(), RawUdp()
    request = Frame(FrameKind.REQUEST, "json", b'"work"', target="slow", call_id=CALL_ID,
                    deadline_ms=60_000)
    cancel = Frame(FrameKind.CANCEL, "", b"", call_id=CALL_ID)
    try:
        async with Node(udp_config("server")) as server:
            server.spawn(slow, name="slow")
            caller.send_to(packet(1, request), server.address("udp"))
            async with asyncio.timeout(20):
                await started.wait()
            attacker.send_to(packet(2, cancel), server.address("udp"))
            await wait_for(lambda: server.stats().total["forged_cancels"] == 1, "forged cancel")
            assert not cancelled.is_set()
            caller.send_to(packet(3, cancel), server.address("udp"))
            async with asyncio.timeout(20):
                await cancelled.wait()
    finally:
        caller.close()
        attacker.close()
