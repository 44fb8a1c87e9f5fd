"""zstd bombs and mailbox bytes: frames of a few hundred bytes that decompress to a whole
message each, as many as a datagram holds (tests/adversary/test_attack_bombs.py)."""

from __future__ import annotations

import socket
import time

import msgpack
import zstandard

from relay_core import Node, NodeConfig, PeerConfig
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet

from ._victim import UDP_VICTIM, Victim

MIB = 1024 * 1024
MESSAGE = 16 * MIB  # the victim's max_message_size: its default
BOMBS_PER_DATAGRAM = 113  # as many 16 MiB frames as one datagram holds
BOMB_DATAGRAMS = 10
FILLING_DATAGRAMS = 200
FLOOD_DATAGRAMS = 1000
FILLING_FRAMES = 16  # of 1 MiB each: 16 MiB a packet, within its budget
INCARNATION = 0xB0B
UNTHROTTLED_VICTIM = UDP_VICTIM.replace(
    'name = "victim"', 'name = "victim"\nmax_decompression_rate = 17179869184')
"""The udp victim with a decompression rate no attack here reaches (16 GiB/s), so that
what bounds its memory is the mailbox's bytes alone."""


def _expanding(size: int) -> bytes:
    """A zstd frame whose msgpack content (one bin of zeros) is ``size`` bytes long."""
    content = msgpack.packb(b"\0" * (size - 5))
    return zstandard.ZstdCompressor(write_content_size=True).compress(content)


def _frame(target: str, size: int) -> bytes:
    return encode_frame(Frame(FrameKind.MESSAGE, "msgpack", _expanding(size), "zstd", target))


async def _send_paced(victim: Victim, packets: list[bytes], every: int) -> float:
    """Send ``packets``, and after each ``every`` of them ask the victim's echo from a
    fresh node (which also keeps the victim's receive buffer from overflowing): return
    the slowest answer, in seconds."""
    host, port = victim.address("udp").removeprefix("udp://").rsplit(":", 1)
    config = NodeConfig(name="prober", listen={},
                        peers={"victim": PeerConfig(victim.address("udp"))})
    slowest = 0.0
    async with Node(config) as prober:
        echo = prober.ref("victim/echo")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for index, packet in enumerate(packets, 1):
                sock.sendto(packet, (host, int(port)))
                if index % every == 0 or index == len(packets):
                    started = time.perf_counter()
                    await echo.rpc("during", timeout=30.0)
                    slowest = max(slowest, time.perf_counter() - started)
    return slowest


def _figures(total: dict[str, int], slowest: float, **sent: object) -> dict[str, object]:
    return {**sent, "slowest answer during s": round(slowest, 3),
            "frames received": total["frames_received"],
            "messages received": total["messages_received"],
            "over_budget counted": total["over_budget"],
            "decompression_limited counted": total["decompression_limited"],
            "oversize counted": total["oversize"],
            "unknown_actor counted": total["unknown_actor"],
            "mailbox_full counted": total["mailbox_full"]}


async def _bombs(victim: Victim, scale: float, target: str) -> dict[str, object]:
    count = max(1, round(BOMB_DATAGRAMS * scale))
    frames = [_frame(target, MESSAGE)] * BOMBS_PER_DATAGRAM
    packets = [encode_packet(INCARNATION, sequence, frames) for sequence in range(1, count + 1)]
    slowest = await _send_paced(victim, packets, 1)
    total = (await victim.stats())["total"]
    assert isinstance(total, dict)
    return _figures(total, slowest, **{"datagrams sent": count,
                                       "datagram bytes": len(packets[0]),
                                       "frames sent": count * BOMBS_PER_DATAGRAM,
                                       "bytes they expand to MiB": count * BOMBS_PER_DATAGRAM * 16})


async def bomb_unknown_actor(victim: Victim, scale: float) -> dict[str, object]:
    """Datagrams of 113 frames that each decompress to 16 MiB, for no actor."""
    return await _bombs(victim, scale, "nobody")


async def bomb_live_actor(victim: Victim, scale: float) -> dict[str, object]:
    """The same bombs for the demo ``counter`` (a 10,000-message mailbox)."""
    return await _bombs(victim, scale, "counter")


async def mailbox_bytes(victim: Victim, scale: float) -> dict[str, object]:
    """Datagrams within their budget (16 frames of 1 MiB each) for ``counter``, back to
    back: what its mailbox may hold is bounded in bytes, not only in messages."""
    count = max(1, round(FILLING_DATAGRAMS * scale))
    frames = [_frame("counter", MIB)] * FILLING_FRAMES
    packets = [encode_packet(INCARNATION, sequence, frames) for sequence in range(1, count + 1)]
    slowest = await _send_paced(victim, packets, 50)
    total = (await victim.stats())["total"]
    assert isinstance(total, dict)
    return _figures(total, slowest, **{"datagrams sent": count,
                                       "frames sent": count * FILLING_FRAMES})


async def bomb_flood(victim: Victim, scale: float) -> dict[str, object]:
    """Small datagrams of one 16 MiB bomb each, back to back with no pause: what a
    stream of bombs costs the node's CPU, one message's decompression per datagram."""
    count = max(1, round(FLOOD_DATAGRAMS * scale))
    frame = _frame("nobody", MESSAGE)
    packets = [encode_packet(INCARNATION, sequence, [frame])
               for sequence in range(1, count + 1)]
    slowest = await _send_paced(victim, packets, count)
    total = (await victim.stats())["total"]
    assert isinstance(total, dict)
    return _figures(total, slowest, **{"datagrams sent": count,
                                       "datagram bytes": len(packets[0])})


ATTACKS = {
    "zstd bomb unknown actor": (UDP_VICTIM, bomb_unknown_actor),
    "zstd bomb live actor": (UDP_VICTIM, bomb_live_actor),
    "mailbox bytes": (UNTHROTTLED_VICTIM, mailbox_bytes),
    "zstd bomb flood": (UDP_VICTIM, bomb_flood),
}
