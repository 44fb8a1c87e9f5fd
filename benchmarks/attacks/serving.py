"""Attacks on the serving side of RPC: requests nobody answers, and cached replies retried
from a forged source.

The attacker writes packets with relay_core.protocol.wire from a raw UDP socket, so it names
any incarnation, sequence number and call id it likes. Loopback cannot forge a
source address, so a second socket stands for the address a forger would name.
"""

from __future__ import annotations

import asyncio
import socket

from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet

from ._victim import UDP_VICTIM, Victim

UNANSWERED_REQUESTS = 120_000
REQUESTS_PER_PACKET = 8
TRIGGER_BYTES = 71_000
CACHED_REPLY_SIZE = 60_000
_INCARNATION = 0xA77AC4
_QUIET = 0.5


def _udp_target(victim: Victim) -> tuple[str, int]:
    host, port = victim.address("udp").removeprefix("udp://").rsplit(":", 1)
    return host, int(port)


def _request(call_id: int, target: str, payload: bytes, deadline_ms: int | None) -> bytes:
    return encode_frame(Frame(FrameKind.REQUEST, "json", payload, target=target,
                              call_id=call_id, deadline_ms=deadline_ms))


async def _counters(victim: Victim) -> dict[str, int]:
    stats = await victim.stats()
    total = stats["total"]
    assert isinstance(total, dict)
    return total


async def unanswered_requests(victim: Victim, scale: float) -> dict[str, object]:
    """Requests with no deadline to ``sink``, which takes them and answers none."""
    count = max(REQUESTS_PER_PACKET, int(UNANSWERED_REQUESTS * scale))
    target = _udp_target(victim)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for sequence, first in enumerate(range(1, count + 1, REQUESTS_PER_PACKET), start=1):
            frames = [_request(call_id, "sink", b"0", None)
                      for call_id in range(first, min(first + REQUESTS_PER_PACKET, count + 1))]
            sock.sendto(encode_packet(_INCARNATION, sequence, frames), target)
            if sequence % 16 == 0:  # let the victim read: a full socket buffer is not the test
                await asyncio.sleep(0.002)
    await asyncio.sleep(_QUIET)
    stats = await victim.stats()
    total = stats["total"]
    assert isinstance(total, dict)
    # The one stats request just made is the prober's, and is answered.
    taken = total["messages_received"] - 1
    return {"requests sent": count, "requests taken": taken,
            "evicted and counted": total.get("requests_evicted", 0),
            "left in the table": taken - total.get("requests_evicted", 0),
            "refused (mailbox full)": total["mailbox_full"],
            "kernel receive drops": stats.get("receive_drops", {})}


async def retried_cached_reply(victim: Victim, scale: float) -> dict[str, object]:
    """One honest 60 KB echo, then tiny retries of it: from another socket (the address a
    forger would name) and from the caller's own. What the victim sent each address is
    read from its per-peer counters (the sockets' own buffers would lose most of it)."""
    target = _udp_target(victim)
    caller = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    reflector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for sock in (caller, reflector):
            sock.bind(("127.0.0.1", 0))
        payload = b'"' + b"x" * CACHED_REPLY_SIZE + b'"'
        caller.sendto(encode_packet(_INCARNATION, 1, [_request(1, "echo", payload, 10_000)]),
                      target)
        caller.settimeout(10.0)
        first_reply = len(caller.recv(65535))
        trigger_bytes = max(1, int(TRIGGER_BYTES * scale))
        sequence, sent = 1, {"other": 0, "same": 0}
        for name, sock in (("other", reflector), ("same", caller)):
            while sent[name] < trigger_bytes:
                sequence += 1
                packet = encode_packet(_INCARNATION, sequence, [_request(1, "echo", b"0", 10_000)])
                sock.sendto(packet, target)
                sent[name] += len(packet)
                if sequence % 64 == 0:
                    await asyncio.sleep(0.002)
        await asyncio.sleep(_QUIET)
        urls = {name: f"udp://127.0.0.1:{sock.getsockname()[1]}"
                for name, sock in (("other", reflector), ("same", caller))}
    finally:
        caller.close()
        reflector.close()
    stats = await victim.stats()
    total, peers = stats["total"], stats["peers"]
    assert isinstance(total, dict) and isinstance(peers, dict)
    drawn_other = peers.get(urls["other"], {}).get("bytes_sent", 0)
    drawn_same = peers[urls["same"]]["bytes_sent"] - first_reply
    return {"first reply bytes": first_reply,
            "trigger bytes (other source)": sent["other"],
            "bytes sent back (other source)": drawn_other,
            "trigger bytes (same source)": sent["same"],
            "bytes sent back (same source, after the first reply)": drawn_same,
            "amplification (same source)": round(drawn_same / sent["same"], 2),
            "not resent, counted": total.get("replies_not_resent", 0)}


ATTACKS = {
    "unanswered requests": (UDP_VICTIM, unanswered_requests),
    "retried cached reply": (UDP_VICTIM, retried_cached_reply),
}
