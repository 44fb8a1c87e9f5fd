"""Forged packets on plain udp: replies to calls the victim makes, and a sender's window moved.

The attacker writes packets with relay_core.protocol.wire from a raw UDP socket,
so it names any incarnation, sequence number and call id it likes.

- forged replies: the victim is the caller. Its demo actor ``forward`` calls a slow
  peer (a node in its own process, over tcp, answering after a second) for each of
  many concurrent requests, while the attacker sprays RESPONSE frames at the
  victim's udp listener: call ids 1, 2, 3, ... and random ones. Every call must end
  with the slow peer's value; none with a forged one.
- silenced sender: an honest node B sends to the victim's ``counter``. The attacker
  reads B's incarnation from B's answer to a request of its own, then sends the
  victim one packet from another socket that claims B's incarnation and the last
  sequence number there is. B's messages after it must all still be delivered
  (up to udp loss on loopback).
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections import Counter

from relay_core import ActorRef, ListenConfig, Node, NodeConfig, PeerConfig
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet
from relay_core.protocol.wire_read import decode_packet
from relay_core.tools.demo import echo

from ._slow_peer import SlowPeer, answer_to
from ._victim import UDP_VICTIM, Victim

CALLS = 50
SPRAYED_IDS = 2_000
"""Call ids 1 to this, then as many random ones."""
CALL_TIMEOUT = 20.0
MESSAGES_BEFORE = 100
MESSAGES_AFTER = 1_000
LAST_SEQUENCE = (1 << 64) - 1
FORGED = "forged"
_INCARNATION = 0xF0F6ED
_WAIT_LIMIT = 20.0
_WINDOW_DROPS = ("too_old", "duplicates")
_SETTLED = 1.0  # seconds without a new message before a count is taken as final


def _udp_target(victim: Victim) -> tuple[str, int]:
    host, port = victim.address("udp").removeprefix("udp://").rsplit(":", 1)
    return host, int(port)


async def _counters(victim: Victim) -> dict[str, int]:
    total = (await victim.stats())["total"]
    assert isinstance(total, dict)
    return total


async def _calls_sent(victim: Victim, peer: str, calls: int) -> None:
    """Wait until the victim has sent its ``calls`` requests to ``peer``."""
    async with asyncio.timeout(_WAIT_LIMIT):
        while True:
            peers = (await victim.stats())["peers"]
            assert isinstance(peers, dict)
            if peers.get(peer, {}).get("messages_sent", 0) >= calls:
                return
            await asyncio.sleep(0.02)


async def _spray(victim: Victim, call_ids: list[int]) -> None:
    target = _udp_target(victim)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for sequence, call_id in enumerate(call_ids, start=1):
            frame = Frame(FrameKind.RESPONSE, "json", f'"{FORGED}"'.encode(), call_id=call_id)
            sock.sendto(encode_packet(_INCARNATION, sequence, [encode_frame(frame)]), target)
            if sequence % 64 == 0:  # let the victim read: a full socket buffer is not the test
                await asyncio.sleep(0)


async def forged_replies(victim: Victim, scale: float) -> dict[str, object]:
    """The victim calls a slow peer for many callers at once while replies are sprayed at it."""
    calls, sprayed = max(1, int(CALLS * scale)), max(1, int(SPRAYED_IDS * scale))
    call_ids = list(range(1, sprayed + 1)) + [random.randrange(1, 1 << 64) for _ in range(sprayed)]
    client_config = NodeConfig(name="callers", listen={},
                               peers={"victim": PeerConfig(victim.address("udp"))})
    async with SlowPeer() as peer, Node(client_config) as client:
        forward, to = client.ref("victim/forward"), f"{peer.address}/slow"
        pending = [asyncio.ensure_future(forward.rpc({"to": to, "message": n},
                                                     timeout=CALL_TIMEOUT))
                   for n in range(calls)]
        await _calls_sent(victim, peer.address, calls)
        await _spray(victim, call_ids)
        waiting = sum(not call.done() for call in pending)
        outcomes = await asyncio.gather(*pending, return_exceptions=True)
    answered = sum(outcome == answer_to(n) for n, outcome in enumerate(outcomes))
    forged = sum(outcome == FORGED for outcome in outcomes)
    others = Counter(type(outcome).__name__ for n, outcome in enumerate(outcomes)
                     if outcome not in (answer_to(n), FORGED))
    stats = await victim.stats()
    total = stats["total"]
    assert isinstance(total, dict)
    return {"calls made": calls, "calls waiting when spray ended": waiting,
            "forged replies sprayed": len(call_ids),
            "answered with the server's value": answered, "forged delivered": forged,
            "other outcomes": dict(others),
            "counted forged_replies": total["forged_replies"],
            "counted late_replies": total["late_replies"],
            "kernel receive drops": stats.get("receive_drops", {})}


class _FirstDatagram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, source: tuple[str, int]) -> None:
        if not self.received.done():
            self.received.set_result(data)


async def _incarnation_of(node_url: str) -> int:
    """The incarnation in the header of ``node_url``'s answer to a request to its echo."""
    host, port = node_url.removeprefix("udp://").rsplit(":", 1)
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(
        _FirstDatagram, local_addr=("127.0.0.1", 0))
    try:
        request = Frame(FrameKind.REQUEST, "json", b'"who are you?"', target="echo",
                        call_id=1, deadline_ms=10_000)
        transport.sendto(encode_packet(_INCARNATION, 1, [encode_frame(request)]),
                         (host, int(port)))
        async with asyncio.timeout(_WAIT_LIMIT):
            return decode_packet(await listener.received).incarnation
    finally:
        transport.close()


async def _count(reader: ActorRef, expected: int) -> int:
    """What the victim's counter holds once it reaches ``expected`` or stops growing (loss)."""
    last, changed = -1, time.monotonic()
    async with asyncio.timeout(_WAIT_LIMIT):
        while True:
            count = await reader.rpc("how many?", timeout=5.0)
            assert isinstance(count, int)
            if count >= expected or (count == last and time.monotonic() - changed > _SETTLED):
                return count
            if count != last:
                last, changed = count, time.monotonic()
            await asyncio.sleep(0.05)


async def _send(ref: ActorRef, count: int) -> None:
    for index in range(count):
        await ref.send(index)
        if index % 64 == 63:
            await asyncio.sleep(0.001)  # a burst the size of a socket buffer at most


async def _forge(victim: Victim, incarnation: int) -> int:
    """One packet claiming B's incarnation and the last sequence number, from another
    socket; its message goes to ``sink``, so ``counter`` counts B alone. Returns how many
    messages the victim took from it, once it took or dropped it."""
    baseline = await _counters(victim)
    forged = Frame(FrameKind.MESSAGE, "json", f'"{FORGED}"'.encode(), target="sink")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(encode_packet(incarnation, LAST_SEQUENCE, [encode_frame(forged)]),
                    _udp_target(victim))
    looks = 0
    async with asyncio.timeout(_WAIT_LIMIT):
        while True:
            await asyncio.sleep(0.05)
            counters = await _counters(victim)
            looks += 1  # each look is a request the victim takes too
            taken = counters["messages_received"] - baseline["messages_received"] - looks
            dropped = sum(counters[name] - baseline[name] for name in _WINDOW_DROPS)
            if taken or dropped:
                return taken


async def silenced_sender(victim: Victim, scale: float) -> dict[str, object]:
    """B sends, a forged packet claims B's last sequence number, B sends again."""
    after = max(1, int(MESSAGES_AFTER * scale))
    to_victim = {"victim": PeerConfig(victim.address("udp"))}
    b_config = NodeConfig(name="b", listen={"udp": ListenConfig("127.0.0.1", 0)},
                          peers=to_victim)
    async with Node(b_config) as b, Node(NodeConfig(name="reader", listen={},
                                                    peers=to_victim)) as reader_node:
        b.spawn(echo, name="echo")
        incarnation = await _incarnation_of(b.address("udp"))
        counting, reader = b.ref("victim/counter"), reader_node.ref("victim/counter")
        await _send(counting, MESSAGES_BEFORE)
        before = await _count(reader, MESSAGES_BEFORE)
        forged_taken = await _forge(victim, incarnation)
        await _send(counting, after)
        delivered_after = await _count(reader, before + after) - before
    stats = await victim.stats()
    total = stats["total"]
    assert isinstance(total, dict)
    return {"B's incarnation (from its answer)": f"{incarnation:016x}",
            "B's messages before, delivered": f"{before} of {MESSAGES_BEFORE}",
            "forged message (to sink) taken": forged_taken,
            "B's messages after the forgery": after,
            "of them delivered": delivered_after,
            "counted too_old": total["too_old"], "counted duplicates": total["duplicates"],
            "kernel receive drops": stats.get("receive_drops", {})}


ATTACKS = {"forged replies": (UDP_VICTIM, forged_replies),
           "silenced sender": (UDP_VICTIM, silenced_sender)}
