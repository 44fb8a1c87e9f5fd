"""The demo actors that ``net-relay node`` hosts, and ``net-relay demo`` itself.

``echo`` answers an RPC with its request; ``counter`` counts the plain messages
it receives and answers an RPC with that count; ``sink`` answers nothing;
``forward`` answers an RPC ``{"to": ADDRESS, "message": M}`` with the reply of
the RPC it makes to ADDRESS (an actor calling another node). The demo runs two
nodes on loopback for every installed transport and codec and prints what went
through.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from relay_core import ActorContext
from relay_core.config.node_config import ListenConfig, NodeConfig, PeerConfig
from relay_core.errors import RelayError
from relay_core.plugins.registry import PluginRegistry
from relay_core.runtime.node import Node
from relay_core.runtime.rpc import Rpc

__all__ = ["DemoRow", "counter", "echo", "forward", "loopback_options", "run_demo", "sink",
           "spawn_demo_actors"]

_SHORTEST_CALL = 0.001  # seconds: a request past its deadline is cancelled, not called on
_FORWARD_TAKES = '{"to": "SCHEME://HOST:PORT/ACTOR" (or "PEER/ACTOR"), "message": ANY}'


async def echo(ctx: ActorContext) -> None:
    """Answers every RPC with its request; ignores plain messages."""
    async for message in ctx:
        if isinstance(message, Rpc):
            message.respond(message.request)


async def counter(ctx: ActorContext) -> None:
    """Counts plain messages; answers every RPC with the count so far."""
    count = 0
    async for message in ctx:
        if isinstance(message, Rpc):
            message.respond(count)
        else:
            count += 1


async def sink(ctx: ActorContext) -> None:
    """Takes every message and RPC and answers none: a call to it runs into its
    deadline, and requests to it stay in the node's table of requests being handled
    until their deadline or ``max_active_requests`` retires them."""
    async for _ in ctx:
        pass


async def forward(ctx: ActorContext) -> None:
    """Answers an RPC ``{"to": ADDRESS, "message": M}`` with the reply of an RPC of M to
    ADDRESS (a URL, ``PEER/ACTOR``, or a local actor's name: a node cannot reach itself
    by its udp URL), made within what is left of the caller's deadline; the error of that call
    (or of a request it cannot relay) is the answer's error, which its caller gets as a
    ``RemoteError``. Calls are relayed concurrently, each while its request lasts: a
    request the node evicts (``max_active_requests``) or its caller cancels cancels
    the call it made. Plain messages are ignored.

    Whoever reaches a node hosting it can have the node call any address: a demo of
    an actor calling another node, not a service to expose.
    """
    relaying: set[asyncio.Task[None]] = set()
    try:
        async for message in ctx:
            if isinstance(message, Rpc):
                task = asyncio.ensure_future(message.handle(_relay_for(ctx.node, message)))
                relaying.add(task)
                task.add_done_callback(relaying.discard)
        if relaying:  # the mailbox closed: the calls under way end by their deadlines
            await asyncio.wait(relaying)
    finally:
        for task in relaying:
            task.cancel()


def _relay_for(node: Node, rpc: Rpc[object]) -> Callable[[object], Awaitable[object]]:
    async def relay(request: object) -> object:
        to, message = _forwarded(request)
        try:
            ref = node.ref(to)
        except RelayError as error:
            raise ValueError(f"forward cannot call {to!r}: {error}; it takes "
                             f"{_FORWARD_TAKES}") from None
        return await ref.rpc(message, timeout=max(rpc.time_left, _SHORTEST_CALL))

    return relay


def _forwarded(request: object) -> tuple[str, object]:
    """The address and message of a forward request, or ValueError saying what it takes."""
    if not (isinstance(request, dict) and isinstance(request.get("to"), str)
            and "message" in request):
        raise ValueError(f"forward takes {_FORWARD_TAKES}, not {request!r:.200}")
    return request["to"], request["message"]


def spawn_demo_actors(node: Node) -> None:
    node.spawn(echo, name="echo")
    node.spawn(forward, name="forward")
    node.spawn(sink, name="sink")
    node.spawn(counter, name="counter", mailbox_size=max(node.config.mailbox_size, 10_000))


@dataclass(frozen=True, slots=True)
class DemoRow:
    transport: str
    codec: str
    sent: int
    received: int
    rpcs: int
    rtt_p50_ms: float
    rtt_p99_ms: float
    error: str = ""


Options = Mapping[str, object]


def loopback_options(scheme: str, workdir: Path) -> tuple[Options, Options]:
    """Listener and peer options a transport needs on loopback (QUIC: a development cert)."""
    if scheme != "quic":
        return {}, {}
    from relay_transports._certs import generate_self_signed  # only the demo needs it

    cert, key = workdir / "demo-cert.pem", workdir / "demo-key.pem"
    if not cert.exists():
        generate_self_signed(cert, key, days=1)
    return {"certificate": str(cert), "private_key": str(key)}, {"ca": str(cert)}


async def _exchange(scheme: str, codec: str, messages: int, rpcs: int,
                    registry: PluginRegistry, workdir: Path) -> DemoRow:
    listen_options, peer_options = loopback_options(scheme, workdir)
    server_config = NodeConfig(name="beta", listen={
        scheme: ListenConfig("127.0.0.1", 0, listen_options)})
    async with Node(server_config, registry=registry) as server:
        spawn_demo_actors(server)
        peer = PeerConfig(address=server.address(scheme), codec=codec, options=peer_options)
        client_config = NodeConfig(name="alpha", codec=codec, listen={}, peers={"beta": peer})
        async with Node(client_config, registry=registry) as client:
            counter_ref, echo_ref = client.ref("beta/counter"), client.ref("beta/echo")
            for index in range(messages):
                await counter_ref.send({"n": index, "text": "hello"})
                if index % 100 == 99:
                    await asyncio.sleep(0)  # let a turn pass so the batch goes out
            times = []
            for index in range(rpcs):
                started = time.perf_counter()
                await echo_ref.rpc({"n": index, "blob": b"\x00\x01"}, timeout=5.0)
                times.append((time.perf_counter() - started) * 1000)
            received = await counter_ref.rpc("count?", timeout=5.0)
    quantiles = statistics.quantiles(times, n=100) if len(times) > 1 else times * 99
    count = received if isinstance(received, int) else -1
    return DemoRow(scheme, codec, messages, count, rpcs, quantiles[49], quantiles[98])


async def run_demo(messages: int = 1000, rpcs: int = 200) -> list[DemoRow]:
    """Exchange messages and RPCs between two loopback nodes per transport and codec."""
    registry = PluginRegistry.load()
    rows = []
    with tempfile.TemporaryDirectory(prefix="net-relay-demo-") as workdir:
        for scheme in registry.transport_schemes():
            for codec in registry.codec_names():
                try:
                    row = await _exchange(scheme, codec, messages, rpcs, registry, Path(workdir))
                except RelayError as exc:
                    row = DemoRow(scheme, codec, messages, 0, 0, 0.0, 0.0, str(exc))
                rows.append(row)
    return rows
