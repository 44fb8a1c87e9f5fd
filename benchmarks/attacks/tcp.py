"""Hostile tcp clients at the reported scale: slowloris, idle connections, parked partial packets.

Each attack keeps its connections open while it asks the victim's echo from a
fresh caller, so ``answers during attack`` says whether the node serves others
while under it; then it reads the victim's counters and lets go.
"""

from __future__ import annotations

import asyncio
import resource
import struct
import time

from ._victim import Victim

TCP_VICTIM = """
[node]
name = "victim"

[listen.tcp]
host = "127.0.0.1"
port = 0
"""
SLOWLORIS = 1000
IDLE = 2000
PARTIAL_CONNECTIONS = 8
PARTIAL_DECLARED = 64 * 1024 * 1024  # the length each one declares (under max_packet_size)
PARTIAL_SENT = 60 * 1024 * 1024  # what each one sends of it before waiting forever
SETTLE_LIMIT = 30.0  # seconds an attack waits for the victim to close what it should
CHUNK = 1024 * 1024
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _room_for(connections: int) -> None:
    """Raise this process's descriptor limit so the attack, not the prober, runs out first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


async def _open(victim: Victim, count: int) -> list[Connection]:
    host, port = victim.address("tcp").removeprefix("tcp://").rsplit(":", 1)
    _room_for(count)
    opened = []
    for _ in range(count):
        try:
            opened.append(await asyncio.open_connection(host, int(port)))
        except OSError:
            break  # out of ports or descriptors here: the attack is as large as it got
    return opened


async def _closed(reader: asyncio.StreamReader, limit: float) -> bool:
    """Whether the victim closed the connection within ``limit`` seconds."""
    try:
        async with asyncio.timeout(limit):
            while await reader.read(CHUNK):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def _count_closed(connections: list[Connection], limit: float) -> int:
    deadline = time.monotonic() + limit
    closed = 0
    for reader, _ in connections:
        closed += await _closed(reader, max(0.0, deadline - time.monotonic()))
    return closed


def _let_go(connections: list[Connection]) -> None:
    for _, writer in connections:
        writer.transport.abort()


async def _counters(victim: Victim) -> dict[str, int]:
    total = (await victim.stats("tcp"))["total"]
    assert isinstance(total, dict)
    return {name: total[name] for name in
            ("connections_refused", "connections_timed_out", "connections_over_budget")}


async def _trickle(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> None:
    writer.write(struct.pack(">I", 1000))
    for _ in range(int(SETTLE_LIMIT)):
        if reader.at_eof() or writer.is_closing():
            return
        try:
            writer.write(b"x")
        except ConnectionError:
            return
        await asyncio.sleep(1.0)


async def slowloris(victim: Victim, scale: float) -> dict[str, object]:
    """Connections that trickle a byte a second of a packet they never finish."""
    connections = await _open(victim, max(1, int(SLOWLORIS * scale)))
    trickles = [asyncio.create_task(_trickle(w, r)) for r, w in connections]
    answered = await victim.answers_within(1.0, "tcp")
    closed = await _count_closed(connections, SETTLE_LIMIT)
    for task in trickles:
        task.cancel()
    await asyncio.gather(*trickles, return_exceptions=True)
    _let_go(connections)
    return {"connections": len(connections), "answers during attack": answered is not None,
            "closed by the victim": closed, **await _counters(victim)}


async def idle(victim: Victim, scale: float) -> dict[str, object]:
    """Connections that send nothing at all."""
    connections = await _open(victim, max(1, int(IDLE * scale)))
    answered = await victim.answers_within(1.0, "tcp")
    closed = await _count_closed(connections, SETTLE_LIMIT)
    _let_go(connections)
    return {"connections": len(connections), "answers during attack": answered is not None,
            "closed by the victim": closed, **await _counters(victim)}


async def _park(writer: asyncio.StreamWriter, sent: int) -> int:
    """Send a 64 MiB length and ``sent`` bytes of it; what went before the victim closed."""
    written = 0
    try:
        writer.write(struct.pack(">I", PARTIAL_DECLARED))
        while written < sent:
            writer.write(bytes(min(CHUNK, sent - written)))
            await writer.drain()
            written += min(CHUNK, sent - written)
    except ConnectionError:
        pass
    return written


async def partial_packets(victim: Victim, scale: float) -> dict[str, object]:
    """Connections that each park most of a 64 MiB packet and never finish it."""
    connections = await _open(victim, max(1, int(PARTIAL_CONNECTIONS * scale)))
    sent = await asyncio.gather(*(_park(w, PARTIAL_SENT) for _, w in connections))
    answered = await victim.answers_within(1.0, "tcp")
    rss_held = victim.rss()
    figures = await _counters(victim)
    _let_go(connections)
    return {"connections": len(connections), "MiB sent": round(sum(sent) / CHUNK),
            "answers during attack": answered is not None,
            "rss while held MiB": round(rss_held / CHUNK, 1), **figures}


ATTACKS = {
    "tcp slowloris": (TCP_VICTIM, slowloris),
    "tcp idle connections": (TCP_VICTIM, idle),
    "tcp partial packets": (TCP_VICTIM, partial_packets),
}
