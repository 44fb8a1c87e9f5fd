"""Backpressure: a reliable transport never drops a message for a full mailbox.

Over TCP, a message for a full mailbox parks its connection: the node stops
reading it until the actor has taken enough, so TCP slows the sender and every
message arrives, in order. Over UDP (lossy anyway) the overrun is dropped and
counted, as before. Requests to a full mailbox still get ``Overloaded``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine

import pytest

from nodes import WAIT_LIMIT, collector, udp_config, wait_for
from relay_core import ActorContext, ListenConfig, Node, NodeConfig, Overloaded

MESSAGES = 2000

Actor = Callable[[ActorContext], Coroutine[object, object, None]]


def tcp_config(name: str, max_message_size: int | None = None) -> NodeConfig:
    config = NodeConfig(name=name, listen={"tcp": ListenConfig("127.0.0.1", 0)})
    if max_message_size is None:
        return config
    return dataclasses.replace(config, max_message_size=max_message_size)


def gated_reader(gate: asyncio.Event, into: list[object], pause_every: int = 0) -> Actor:
    """An actor that reads nothing until ``gate`` opens, then reads, pausing now and then."""
    async def actor(ctx: ActorContext) -> None:
        await gate.wait()
        async for message in ctx:
            into.append(message)
            if pause_every and len(into) % pause_every == 0:
                await asyncio.sleep(0.001)
    return actor



def total(node: Node, counter: str) -> int:
    return node.stats().total[counter]


async def test_over_tcp_a_slow_actor_gets_every_message_in_order() -> None:
    gate = asyncio.Event()
    received: list[object] = []
    async with asyncio.timeout(4 * WAIT_LIMIT), Node(tcp_config("server")) as server:
        server.spawn(gated_reader(gate, received, pause_every=25), name="sink", mailbox_size=10)
        async with Node(NodeConfig(name="client")) as client:
            sink = client.ref(f"{server.address('tcp')}/sink")
            for number in range(MESSAGES):
                await sink.send(number)
            # more than the mailbox holds has arrived: the connection is parked
            await wait_for(lambda: total(server, "messages_received") > 10, "an overrun")
            gate.set()
            await wait_for(lambda: len(received) == MESSAGES, "every message")
    assert received == list(range(MESSAGES))
    assert total(server, "mailbox_full") == 0


async def test_over_tcp_the_node_stops_reading_rather_than_buffer_past_its_backlog_limit() -> None:
    # 3000 x 900 bytes is more than the parked connection's backlog may hold
    # (1 MiB): only a transport that stops reading gets it all through.
    gate = asyncio.Event()
    received: list[object] = []
    payload = b"x" * 900
    server_config = tcp_config("server", max_message_size=1024)
    async with asyncio.timeout(4 * WAIT_LIMIT), Node(server_config) as server:
        server.spawn(gated_reader(gate, received), name="sink", mailbox_size=10)
        async with Node(NodeConfig(name="client")) as client:
            sink = client.ref(f"{server.address('tcp')}/sink")
            for _ in range(3000):
                await sink.send(payload)
            await wait_for(lambda: total(server, "messages_received") > 10, "an overrun")
            await asyncio.sleep(0.2)  # time for a transport that kept reading to overrun
            gate.set()
            await wait_for(lambda: len(received) == 3000, "every message")
    assert total(server, "mailbox_full") == 0


async def test_over_tcp_messages_behind_a_full_mailbox_wait_for_it_even_to_other_actors() -> None:
    gate = asyncio.Event()
    slow: list[object] = []
    fast: list[object] = []
    async with asyncio.timeout(4 * WAIT_LIMIT), Node(tcp_config("server")) as server:
        server.spawn(gated_reader(gate, slow), name="slow", mailbox_size=1)
        server.spawn(collector(fast), name="fast")
        async with Node(NodeConfig(name="client")) as client:
            url = server.address("tcp")
            for number in range(3):
                await client.ref(f"{url}/slow").send(number)
            await client.ref(f"{url}/fast").send("after")
            await wait_for(lambda: total(server, "messages_received") >= 2, "a stall")
            await asyncio.sleep(0.05)  # room for a wrong delivery to show (not a timing bound)
            assert fast == []  # one connection, one order: "after" waits behind the stall
            gate.set()
            await wait_for(lambda: fast == ["after"], "the message behind the stall")
    assert slow == [0, 1, 2]


async def test_over_udp_an_overrun_mailbox_still_drops_and_counts() -> None:
    gate = asyncio.Event()
    received: list[object] = []
    async with Node(udp_config("server")) as server:
        server.spawn(gated_reader(gate, received), name="sink", mailbox_size=10)
        async with Node(NodeConfig(name="client")) as client:
            sink = client.ref(f"{server.address('udp')}/sink")
            for number in range(200):
                await sink.send(number)
            await wait_for(lambda: total(server, "messages_received") == 200, "every datagram")
            gate.set()
            await wait_for(lambda: len(received) == 10, "what the mailbox held")
    assert received == list(range(10))
    assert total(server, "mailbox_full") == 190


async def test_over_tcp_a_request_to_a_full_mailbox_is_still_overloaded() -> None:
    gate = asyncio.Event()
    async with Node(tcp_config("server")) as server:
        server.spawn(gated_reader(gate, []), name="busy", mailbox_size=1)
        async with Node(NodeConfig(name="client")) as client:
            busy = client.ref(f"{server.address('tcp')}/busy")
            await busy.send("fills the mailbox")
            await wait_for(lambda: total(server, "messages_received") == 1, "the first message")
            with pytest.raises(Overloaded):
                await busy.rpc("one more", timeout=WAIT_LIMIT)
            gate.set()


async def test_a_node_closed_while_a_connection_is_parked_closes_cleanly() -> None:
    gate = asyncio.Event()  # never opened: the actor never reads
    async with asyncio.timeout(4 * WAIT_LIMIT), Node(NodeConfig(name="client")) as client:
        async with Node(tcp_config("server")) as server:
            server.spawn(gated_reader(gate, []), name="stuck", mailbox_size=1)
            stuck = client.ref(f"{server.address('tcp')}/stuck")
            for number in range(100):
                await stuck.send(number)
            await wait_for(lambda: total(server, "messages_received") >= 2, "a stall")
            await server.close(grace=0.1)
        assert not [task for task in asyncio.all_tasks()
                    if "_drain" in task.get_coro().__qualname__]  # type: ignore[union-attr]
    assert total(server, "mailbox_full") == 0
