"""A flood of forged senders cannot grow a node's memory without bound (docs/limits.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys

import pytest

from nodes import RawUdp, udp_config, wait_for
from relay_core import Node
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet

FORGED_SENDERS = 100_000
RSS_GROWTH_BOUND = 32 * 1024 * 1024
"""The bound docs/limits.md promises for this flood, with the default limits."""


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def forged(incarnation: int) -> bytes:
    kind = FrameKind.REQUEST if incarnation % 2 else FrameKind.MESSAGE
    frame = Frame(kind, "msgpack", b"\xa4boom", target="nobody",
                  call_id=incarnation if kind is FrameKind.REQUEST else 0,
                  deadline_ms=60_000 if kind is FrameKind.REQUEST else None)
    return encode_packet(incarnation, 1, [encode_frame(frame)])


async def flood(attacker: RawUdp, address: str, first: int, count: int) -> None:
    for incarnation in range(first, first + count):
        attacker.send_to(forged(incarnation), address)
        if incarnation % 200 == 0:
            await asyncio.sleep(0)  # let the node read, as a real receiver would


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
async def test_a_hundred_thousand_forged_senders_leave_state_and_memory_bounded() -> None:
    attacker = RawUdp()
    config = dataclasses.replace(udp_config("target"), max_senders=4096)
    try:
        async with Node(config) as node:
            address = node.address("udp")
            await flood(attacker, address, 1, 10_000)  # warm up: caches and tables fill
            await wait_for(lambda: node.stats().total["packets_received"] > 3_000, "warm-up")
            before = resident_bytes()
            await flood(attacker, address, 10_001, FORGED_SENDERS)
            await wait_for(lambda: node.stats().total["packets_received"] > 30_000, "the flood")
            await asyncio.sleep(0.2)
            growth = resident_bytes() - before
            stats = node.stats()
    finally:
        attacker.close()
    assert stats.senders <= 4096
    assert len(stats.peers) <= 1025
    assert stats.total["unknown_actor"] > 0
    assert growth < RSS_GROWTH_BOUND, f"resident memory grew by {growth / 2**20:.1f} MiB"
