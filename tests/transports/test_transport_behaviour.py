"""One behaviour suite for every transport: what a node promises, whatever carries it.

Each case runs two nodes over loopback on one transport variant: udp, tcp,
tcp with TLS, quic on streams and quic on datagrams.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from certs import Pki
from nodes import wait_for
from relay_core import (
    ActorContext,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
    PeerUnreachable,
    PluginRegistry,
    RelayError,
    Rpc,
    RpcTimeout,
    UnknownActor,
)
from relay_core.tools.demo import counter, echo


@dataclass(frozen=True)
class Variant:
    name: str
    scheme: str
    listen_options: Callable[[Pki], Mapping[str, object]]
    peer_options: Callable[[Pki], Mapping[str, object]]
    reliable: bool


def _no_options(pki: Pki) -> Mapping[str, object]:
    return {}


VARIANTS = [
    Variant("udp", "udp", _no_options, _no_options, reliable=False),
    Variant("tcp", "tcp", _no_options, _no_options, reliable=True),
    Variant("tcp-tls", "tcp",
            lambda pki: {"certificate": str(pki.server_cert), "private_key": str(pki.server_key)},
            lambda pki: {"tls": True, "ca": str(pki.ca_cert)}, reliable=True),
    Variant("quic", "quic",
            lambda pki: {"certificate": str(pki.server_cert), "private_key": str(pki.server_key)},
            lambda pki: {"ca": str(pki.ca_cert)}, reliable=True),
    Variant("quic-datagram", "quic",
            lambda pki: {"certificate": str(pki.server_cert), "private_key": str(pki.server_key)},
            lambda pki: {"ca": str(pki.ca_cert), "mode": "datagram"}, reliable=False),
]
INSTALLED = set(PluginRegistry.load().transport_schemes())


@pytest.fixture(params=VARIANTS, ids=lambda variant: variant.name)
def variant(request: pytest.FixtureRequest) -> Variant:
    chosen: Variant = request.param
    if chosen.scheme not in INSTALLED:
        pytest.skip(f"the {chosen.scheme} transport is not installed")
    return chosen



class Pair:
    """A server node config and a client node that names it as peer "server"."""

    def __init__(self, variant: Variant, pki: Pki) -> None:
        self.variant = variant
        self.pki = pki

    def server_config(self, port: int = 0) -> NodeConfig:
        listen = ListenConfig("127.0.0.1", port, self.variant.listen_options(self.pki))
        return NodeConfig(name="server", listen={self.variant.scheme: listen})

    def client_config(self, server: Node) -> NodeConfig:
        peer = PeerConfig(address=server.address(self.variant.scheme),
                          options=self.variant.peer_options(self.pki))
        return NodeConfig(name="client", listen={}, peers={"server": peer})


@pytest.fixture
def pair(variant: Variant, pki: Pki) -> Pair:
    return Pair(variant, pki)


async def test_a_sent_message_reaches_the_actor(pair: Pair) -> None:
    async with Node(pair.server_config()) as server:
        server.spawn(counter, name="counter")
        async with Node(pair.client_config(server)) as client:
            for index in range(20):
                await client.ref("server/counter").send(index)
            await wait_for(lambda: server.stats().total["messages_received"] >= 20, "messages")
            assert await client.ref("server/counter").rpc("count?", timeout=5.0) == 20


async def test_an_rpc_returns_the_reply(pair: Pair) -> None:
    async with Node(pair.server_config()) as server:
        server.spawn(echo, name="echo")
        async with Node(pair.client_config(server)) as client:
            request = {"text": "héllo", "blob": bytes(range(256)), "n": [1, 2.5, None]}
            assert await client.ref("server/echo").rpc(request, timeout=5.0) == request


async def test_a_deadline_cancels_the_remote_work(pair: Pair) -> None:
    cancelled = asyncio.Event()

    async def slow(ctx: ActorContext) -> None:
        async def work(request: object) -> object:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return request

        async for message in ctx:
            assert isinstance(message, Rpc)
            await message.handle(work)

    async with Node(pair.server_config()) as server:
        server.spawn(slow, name="slow")
        async with Node(pair.client_config(server)) as client:
            with pytest.raises(RpcTimeout):
                await client.ref("server/slow").rpc("x", timeout=0.3)
            async with asyncio.timeout(10):
                await cancelled.wait()


async def test_an_unknown_actor_is_a_typed_error(pair: Pair) -> None:
    async with Node(pair.server_config()) as server, Node(pair.client_config(server)) as client:
        with pytest.raises(UnknownActor):
            await client.ref("server/nobody").rpc("x", timeout=5.0)


async def test_garbage_at_the_listener_does_not_stop_the_node(pair: Pair) -> None:
    async with Node(pair.server_config()) as server:
        server.spawn(echo, name="echo")
        port = int(server.address(pair.variant.scheme).rpartition(":")[2])
        await _throw_garbage(pair.variant, port)
        async with Node(pair.client_config(server)) as client:
            assert await client.ref("server/echo").rpc("still here", timeout=5.0) == "still here"


async def _throw_garbage(variant: Variant, port: int) -> None:
    junk = [b"", b"\x00" * 10, b"NR\x01\x00" + b"\xff" * 60, bytes(range(256)) * 4]
    if variant.scheme in ("udp", "quic"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for data in junk:
                sock.sendto(data, ("127.0.0.1", port))
        return
    for data in [b"\xff\xff\xff\xff" + b"x" * 100, b"\x00\x00\x00\x08NRjunk!!", b"GET / HTTP/1.1\r\n\r\n"]:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def test_a_restarted_peer_on_the_same_port_is_reached_again_and_nothing_repeats(
        pair: Pair) -> None:
    first_run: list[object] = []
    second_run: list[object] = []

    def recorder(into: list[object]) -> Callable[[ActorContext], object]:
        async def actor(ctx: ActorContext) -> None:
            async for message in ctx:
                if isinstance(message, Rpc):
                    message.respond(len(into))
                else:
                    into.append(message)
        return actor

    client: Node | None = None
    try:
        async with Node(pair.server_config()) as server:
            server.spawn(recorder(first_run), name="sink")  # type: ignore[arg-type]
            port = int(server.address(pair.variant.scheme).rpartition(":")[2])
            client = Node(pair.client_config(server))
            await client.start()
            ref = client.ref("server/sink")
            for index in range(10):
                await ref.send(("before", index))
            await wait_for(lambda: len(first_run) == 10, "before the restart")
        async with Node(pair.server_config(port)) as restarted:
            restarted.spawn(recorder(second_run), name="sink")  # type: ignore[arg-type]
            await _call_until_answered(ref)
            for index in range(10):
                await ref.send(("after", index))
            await wait_for(lambda: len(second_run) == 10, "after the restart")
    finally:
        if client is not None:
            await client.close()
    assert sorted(map(repr, first_run)) == sorted(repr(["before", i]) for i in range(10))
    assert sorted(map(repr, second_run)) == sorted(repr(["after", i]) for i in range(10))


async def _call_until_answered(ref: object) -> None:
    """Ask until the restarted peer answers (a reconnect may take a few tries; while the
    transport backs off after a refusal, a call fails at once with PeerUnreachable)."""
    async with asyncio.timeout(20):
        while True:
            try:
                await ref.rpc("ping", timeout=0.5)  # type: ignore[attr-defined]
                return
            except RpcTimeout:
                continue
            except PeerUnreachable:
                await asyncio.sleep(0.05)


async def test_a_ten_mebibyte_message_arrives_intact_on_stream_transports(
        pair: Pair, tmp_path: Path) -> None:
    if not pair.variant.reliable:
        pytest.skip("datagram transports refuse messages larger than a datagram")
    big = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    async with Node(pair.server_config()) as server:
        server.spawn(echo, name="echo")
        async with Node(pair.client_config(server)) as client:
            reply = await client.ref("server/echo").rpc(big, timeout=30.0)
    assert reply == big


async def test_a_burst_of_small_messages_fits_the_destinations_packets(pair: Pair) -> None:
    received: list[object] = []

    async def sink(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                message.respond(len(received))
            else:
                received.append(message)

    async with Node(pair.server_config()) as server:
        server.spawn(sink, name="sink", mailbox_size=1000)
        async with Node(pair.client_config(server)) as client:
            ref = client.ref("server/sink")
            await ref.send("first")  # the destination is ready before the burst
            await wait_for(lambda: len(received) == 1, "first")
            for index in range(200):
                ref.try_send({"n": index, "padding": "x" * 40})
            await wait_for(lambda: len(received) == 201 or client.stats().total["send_errors"] > 0,
                           "the burst")
            assert client.stats().total["send_errors"] == 0
            reply = await ref.rpc(b"y" * 900, timeout=10.0)
            assert reply == 201


_LEAVING_CLIENT = """
import asyncio, json, sys
from relay_core import Node, NodeConfig, PeerConfig, run

async def main() -> None:
    url, options = json.loads(sys.argv[1])
    config = NodeConfig(name="leaving", listen={},
                        peers={"server": PeerConfig(address=url, options=options)})
    async with Node(config) as node:
        await node.ref("server/held").rpc("wait for me", timeout=60.0)

run(main())
"""


async def test_a_client_that_leaves_before_its_reply_does_not_stop_the_server(
        pair: Pair) -> None:
    """A client process killed while its request is handled sends no cancel: the reply goes
    to a closed port (an ICMP error comes back over udp and quic) or a reset connection."""
    release = asyncio.Event()
    taken = asyncio.Event()

    async def held(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            taken.set()
            await release.wait()
            message.respond(message.request)

    async with Node(pair.server_config()) as server:
        server.spawn(held, name="held")
        server.spawn(echo, name="echo")
        peer = pair.client_config(server).peers["server"]
        argument = json.dumps([peer.address, dict(peer.options)])
        leaving = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _LEAVING_CLIENT, argument)
        try:
            async with asyncio.timeout(30):
                await taken.wait()
        finally:
            leaving.send_signal(signal.SIGKILL)
            await leaving.wait()
        release.set()
        async with Node(pair.client_config(server)) as later:
            for attempt in range(3):
                await asyncio.sleep(0.05)  # the reply to the dead client has left by now
                assert await later.ref("server/echo").rpc(attempt, timeout=10.0) == attempt


async def test_a_call_made_while_the_peer_is_down_does_not_stop_calls_once_it_is_back(
        pair: Pair) -> None:
    """What the client sends to a peer that is down draws ICMP errors (udp, quic) or refused
    connections; once the peer is back on its port, the next call is answered."""
    async with Node(pair.server_config()) as first:
        port = int(first.address(pair.variant.scheme).rpartition(":")[2])
        client = Node(pair.client_config(first))
    async with client:
        for _ in range(2):
            with pytest.raises(RelayError):
                await client.ref("server/echo").rpc("anyone?", timeout=0.5)
        async with Node(pair.server_config(port)) as restarted:
            restarted.spawn(echo, name="echo")
            await _call_until_answered(client.ref("server/echo"))
            for attempt in range(3):
                assert await client.ref("server/echo").rpc(attempt, timeout=10.0) == attempt
