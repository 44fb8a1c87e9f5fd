"""Hostile tcp clients: each bounded resource of a tcp listener stays bounded, and counted.

A client may trickle bytes and never finish a packet, hold connections open,
open more than the listener takes, park large unfinished packets on many
connections, or arrive while the node has no file descriptor left. Each time
the node closes or refuses what exceeds its limit, counts it, and goes on
answering the clients that behave.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from typing import Any

from nodes import WAIT_LIMIT, wait_for
from relay_core import ListenConfig, Node, NodeConfig
from relay_core.testing import PacketRecorder
from relay_core.tools.demo import echo
from relay_transports._tcp import TcpTransport

PREFIX = struct.Struct(">I")


@contextlib.asynccontextmanager
async def tcp_server(**options: object) -> AsyncIterator[tuple[Node, str, int]]:
    """A node with the demo echo behind a tcp listener with ``options``."""
    config = NodeConfig(name="server", listen={"tcp": ListenConfig("127.0.0.1", 0, options)})
    async with Node(config) as node:
        node.spawn(echo, name="echo")
        host, port = node.address("tcp").removeprefix("tcp://").rsplit(":", 1)
        yield node, host, int(port)


@contextlib.asynccontextmanager
async def client() -> AsyncIterator[Node]:
    async with Node(NodeConfig(name="client", listen={})) as node:
        yield node


async def answers(client_node: Node, host: str, port: int, request: object) -> object:
    return await client_node.ref(f"tcp://{host}:{port}/echo").rpc(request, timeout=WAIT_LIMIT)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the server closed (or reset) the connection; waits at most WAIT_LIMIT."""
    async with asyncio.timeout(WAIT_LIMIT):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass
    return True


async def trickle(writer: asyncio.StreamWriter, reader: asyncio.StreamReader) -> int:
    """Declare a 1000-byte packet, then send it a byte at a time, slowly, never finishing it;
    stop when the server closes. Returns the bytes sent."""
    writer.write(PREFIX.pack(1000))
    sent = 0
    for _ in range(400):  # 400 * 0.05 s: far past any timeout the tests set
        if reader.at_eof():
            break
        try:
            writer.write(b"x")
            await writer.drain()
        except ConnectionError:
            break
        sent += 1
        await asyncio.sleep(0.05)
    return sent


def total(node: Node, name: str) -> int:
    return node.stats().total[name]


async def test_slowloris_connections_are_closed_at_handshake_timeout_and_counted() -> None:
    async with tcp_server(handshake_timeout=0.3) as (server, host, port), client() as good:
        assert await answers(good, host, port, "before") == "before"
        connections = [await asyncio.open_connection(host, port) for _ in range(20)]
        trickles = [asyncio.create_task(trickle(w, r)) for r, w in connections]
        for reader, _ in connections:
            assert await closed_by_server(reader)
        sent = await asyncio.gather(*trickles)
        await wait_for(lambda: total(server, "connections_timed_out") == 20, "20 timed out")
        assert all(count < 400 for count in sent)  # cut off, not left to run out
        assert await answers(good, host, port, "after") == "after"
        for _, writer in connections:
            writer.close()


async def test_idle_connections_are_closed_at_idle_timeout_and_counted() -> None:
    async with tcp_server(idle_timeout=0.2, handshake_timeout=0.2) as (server, host, port):
        idle = [await asyncio.open_connection(host, port) for _ in range(10)]
        for reader, _ in idle:
            assert await closed_by_server(reader)
        await wait_for(lambda: total(server, "connections_timed_out") == 10, "10 timed out")
        for _, writer in idle:
            writer.close()


async def test_connections_past_the_cap_are_refused_and_counted_while_a_client_keeps_working(
) -> None:
    async with tcp_server(max_connections=3) as (server, host, port), client() as good:
        assert await answers(good, host, port, 1) == 1  # the first of three places
        holders = [await asyncio.open_connection(host, port) for _ in range(2)]
        for reader, writer in holders:  # a whole packet each: they keep their places
            writer.write(PREFIX.pack(3) + b"NR?")
            await writer.drain()
        extra = [await asyncio.open_connection(host, port) for _ in range(5)]
        for reader, _ in extra:
            assert await closed_by_server(reader)
        await wait_for(lambda: total(server, "connections_refused") == 5, "5 refused")
        assert await answers(good, host, port, 2) == 2
        for _, writer in extra + holders:
            writer.close()
        # with the places given back, a new client is served
        async with client() as late:
            assert await answers(late, host, port, 3) == 3


async def test_at_the_cap_a_connection_that_sent_nothing_gives_its_place_to_a_newcomer() -> None:
    async with tcp_server(max_connections=3) as (server, host, port), client() as newcomer:
        silent = [await asyncio.open_connection(host, port) for _ in range(3)]
        assert await answers(newcomer, host, port, "served") == "served"
        assert await closed_by_server(silent[0][0])  # the oldest silent one
        await wait_for(lambda: total(server, "connections_refused") == 1, "1 displaced")
        for _, writer in silent:
            writer.close()


async def test_unfinished_packets_on_many_connections_stay_within_the_total_budget() -> None:
    packet = 1 << 20
    partial = 900 * 1024
    events = PacketRecorder()
    transport = TcpTransport(events, max_packet_size=packet, max_buffered_input=2 * packet)
    try:
        host, port = await transport.listen("127.0.0.1", 0)
        connections = []
        for index in range(8):
            reader, writer = await asyncio.open_connection(host, port)
            connections.append((reader, writer))
            writer.write(PREFIX.pack(packet - 1) + bytes(partial))
            await writer.drain()
            if index < 2:  # room for two
                await wait_for(lambda i=index: transport.buffered_input == (i + 1) * (partial + 4),
                               "held")
            else:
                assert await closed_by_server(reader)
                await wait_for(lambda i=index: len(events.dropped) == i - 1, "closed")
            assert transport.buffered_input <= 2 * packet
        assert [reason for _, reason in events.dropped] == ["connections_over_budget"] * 6
        assert transport.buffered_input == 2 * (partial + 4)
        for _, writer in connections:
            writer.close()
        await wait_for(lambda: transport.buffered_input == 0, "the budget given back")
    finally:
        await transport.close()


async def test_a_heph_json_object_over_max_message_size_closes_its_connection() -> None:
    config = NodeConfig(name="heph", max_message_size=64 * 1024, listen={
        "tcp": ListenConfig("127.0.0.1", 0, {"heph_json": "inbox"})})
    received: list[object] = []

    async def inbox(ctx: Any) -> None:
        async for message in ctx:
            received.append(message)

    async with Node(config) as node:
        node.spawn(inbox, name="inbox")
        port = int(node.address("tcp").rpartition(":")[2])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        small = json.dumps({"uuid": str(uuid.uuid4()), "message": "fits"}).encode()
        large = json.dumps({"uuid": str(uuid.uuid4()), "message": "x" * 100_000}).encode()
        writer.write(small + large)
        await writer.drain()
        assert await closed_by_server(reader)
        await wait_for(lambda: received == ["fits"], "the object before it")
        await wait_for(lambda: node.stats().total["malformed"] == 1, "counted once")
        writer.close()


EXHAUSTIBLE_NODE = textwrap.dedent("""
    import asyncio, json, os, resource, sys
    from relay_core import ListenConfig, Node, NodeConfig, run
    from relay_core.tools.demo import echo

    async def main():
        config = NodeConfig(name="victim", listen={"tcp": ListenConfig("127.0.0.1", 0)})
        loop = asyncio.get_running_loop()
        held = []
        async with Node(config) as node:
            node.spawn(echo, name="echo")
            print(node.address("tcp"), flush=True)
            while command := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
                if command == "exhaust":
                    # A low limit keeps this bounded: a few descriptors to take, not a million.
                    in_use = len(os.listdir("/proc/self/fd"))
                    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 8, hard))
                    while len(held) < 64:
                        try:
                            held.append(os.dup(0))
                        except OSError:
                            break
                elif command == "free":
                    for fd in held:
                        os.close(fd)
                    held.clear()
                print(json.dumps(node.stats().total), flush=True)

    run(main())
""")


async def test_out_of_descriptors_the_node_serves_open_connections_and_accepts_again() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", EXHAUSTIBLE_NODE, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    async def ask(command: str) -> dict[str, int]:
        stdin.write(command.encode() + b"\n")
        await stdin.drain()
        async with asyncio.timeout(WAIT_LIMIT):
            return json.loads(await stdout.readline())  # type: ignore[no-any-return]

    try:
        async with asyncio.timeout(WAIT_LIMIT):
            url = (await stdout.readline()).decode().strip()
        host, port = url.removeprefix("tcp://").rsplit(":", 1)
        async with client() as existing, client() as newcomer:
            assert await answers(existing, host, int(port), "open") == "open"
            await ask("exhaust")
            waiting = asyncio.create_task(answers(newcomer, host, int(port), "late"))
            async with asyncio.timeout(WAIT_LIMIT):
                while (await ask("stats"))["connections_refused"] == 0:
                    await asyncio.sleep(0.05)
            assert await answers(existing, host, int(port), "still") == "still"
            await ask("free")
            assert await waiting == "late"
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
