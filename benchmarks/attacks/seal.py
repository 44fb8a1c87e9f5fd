"""Sealed udp: packets captured on their way to one node, replayed where they were not sent.

A sealed sender in the attacker's process sends messages (and requests) through a
recording relay; the attacker then replays every datagram it recorded, to the
victim, which holds the same key. Either the packets were sealed for another node
(the replay to another node), or for the victim itself before it restarted (the
replay after a restart). Nothing of either may be delivered: every data packet
is refused and counted ``unauthenticated``; a hello among them is answered, at
most 8 times a second per source.
"""

from __future__ import annotations

import asyncio
from typing import cast

from relay_core import ListenConfig, Node, NodeConfig, PeerConfig
from relay_core.tools.demo import counter, echo

from ._victim import Victim

KEY = "5e" * 32
SEALED_VICTIM = f"""
[node]
name = "victim"

[listen.udp]
host = "127.0.0.1"
port = 0
keys = {{ "7" = "{KEY}" }}
"""
"""A victim whose udp listener takes sealed packets alone, under key id 7."""
PROBER: dict[str, object] = {"keys": {"7": KEY}}
MESSAGES = 4_000
REQUESTS = 200
_SEALED_DATA = 0x01


class _Recorder(asyncio.DatagramProtocol):
    """A udp relay between one sender and one receiver that keeps what the sender sent."""

    def __init__(self, receiver: tuple[str, int]) -> None:
        self.receiver = receiver
        self.sender: tuple[str, int] | None = None
        self.recorded: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def datagram_received(self, data: bytes, source: tuple[str, int]) -> None:
        assert self.transport is not None
        if source == self.receiver:
            if self.sender is not None:
                self.transport.sendto(data, self.sender)
            return
        self.sender = source
        self.recorded.append(data)
        self.transport.sendto(data, self.receiver)


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("udp://").rsplit(":", 1)
    return host, int(port)


def _sealed(name: str, **peers: str) -> NodeConfig:
    listen = {"udp": ListenConfig("127.0.0.1", 0, {"keys": {"7": KEY}})}
    return NodeConfig(name=name, listen=listen, peers={
        peer: PeerConfig(address=url, options={"keys": {"7": KEY}}) for peer, url in peers.items()})


async def _record(receiver_url: str, scale: float) -> list[bytes]:
    """What a sealed sender sends to ``receiver_url``: messages to its counter, calls to its
    echo (each answered, so the receiver took them all)."""
    loop = asyncio.get_running_loop()
    transport, recorder = await loop.create_datagram_endpoint(
        lambda: _Recorder(_host_port(receiver_url)), local_addr=("127.0.0.1", 0))
    try:
        host, port = transport.get_extra_info("sockname")[:2]
        async with Node(_sealed("sender", receiver=f"udp://{host}:{port}")) as sender:
            counting, echoing = sender.ref("receiver/counter"), sender.ref("receiver/echo")
            for index in range(max(1, int(MESSAGES * scale))):
                await counting.send(index)
                if index % 64 == 63:
                    await asyncio.sleep(0)  # a burst the size of a socket buffer at most
            for index in range(max(1, int(REQUESTS * scale))):
                await echoing.rpc(index, timeout=10.0)
            await counting.rpc("how many?", timeout=10.0)
    finally:
        transport.close()
    return recorder.recorded


async def _replay(victim: Victim, packets: list[bytes]) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    try:
        for index, packet in enumerate(packets):
            transport.sendto(packet, _host_port(victim.address("udp")))
            if index % 64 == 63:
                await asyncio.sleep(0.001)  # let the victim read: a full buffer is not the test
        await asyncio.sleep(0.5)
    finally:
        transport.close()
    stats = await victim.stats(options=PROBER)
    total = stats["total"]
    assert isinstance(total, dict)
    data = sum(1 for packet in packets if packet[3] == _SEALED_DATA)
    # The one message the victim took is the prober's stats request.
    return {"datagrams replayed": len(packets), "of them sealed data": data,
            "replayed delivered": total["messages_received"] - 1,
            "counted unauthenticated": total["unauthenticated"],
            "answers sent": total["packets_sent"] - 1,
            "answers limited": total["handshake_answers_limited"],
            "kernel receive drops": stats.get("receive_drops", {}),
            "prober options": PROBER}


async def replay_to_another_node(victim: Victim, scale: float) -> dict[str, object]:
    """Packets sealed for another holder of the key, replayed to the victim."""
    async with Node(_sealed("receiver")) as receiver:
        receiver.spawn(counter, name="counter")
        receiver.spawn(echo, name="echo")
        packets = await _record(receiver.address("udp"), scale)
    return await _replay(victim, packets)


async def replay_after_restart(victim: Victim, scale: float) -> dict[str, object]:
    """Packets sealed for the victim, replayed once it restarted on the same port."""
    packets = await _record(victim.address("udp"), scale)
    await victim.restart()
    return await _replay(victim, packets)


ATTACKS = {"sealed replay to another node": (SEALED_VICTIM, replay_to_another_node),
           "sealed replay after restart": (SEALED_VICTIM, replay_after_restart)}
