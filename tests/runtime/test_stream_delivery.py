"""The loss ledger over stream transports (tcp, tcp with TLS, quic streams).

What ``send`` accepted is delivered, or counted in messages on the side that
dropped it: an awaited send waits while its link's queue is full, ``try_send``
raises ``LinkBusy`` instead, and leaving ``async with Node(...)`` delivers what
was accepted before it (within the close grace), even to a peer whose
connection is still being made.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass

import pytest

from certs import Pki
from nodes import WAIT_LIMIT, wait_for
from relay_core import (
    ActorContext,
    LinkBusy,
    ListenConfig,
    MailboxFull,
    Node,
    NodeConfig,
    PeerConfig,
)
from relay_core.tools.demo import echo

Actor = Callable[[ActorContext], Coroutine[object, object, None]]
LOSS_COUNTERS = ("mailbox_full", "link_full", "closed_unsent", "connection_lost")


@dataclass(frozen=True)
class Variant:
    name: str
    scheme: str
    tls: bool

    def listen_options(self, pki: Pki) -> dict[str, object]:
        if not self.tls:
            return {}
        return {"certificate": str(pki.server_cert), "private_key": str(pki.server_key)}

    def peer_options(self, pki: Pki) -> Mapping[str, object]:
        if not self.tls:
            return {}
        options: dict[str, object] = {"ca": str(pki.ca_cert)}
        if self.scheme == "tcp":
            options["tls"] = True
        return options


VARIANTS = [Variant("tcp", "tcp", tls=False), Variant("tcp-tls", "tcp", tls=True),
            Variant("quic", "quic", tls=True)]


@pytest.fixture(params=VARIANTS, ids=lambda variant: variant.name)
def variant(request: pytest.FixtureRequest) -> Variant:
    chosen: Variant = request.param
    return chosen



def server_config(variant: Variant, pki: Pki, **settings: object) -> NodeConfig:
    listen = ListenConfig("127.0.0.1", 0, variant.listen_options(pki))
    return NodeConfig(name="server", listen={variant.scheme: listen}, **settings)  # type: ignore[arg-type]


def client_config(variant: Variant, pki: Pki, address: str, **listen: object) -> NodeConfig:
    """A client naming the server as peer "server"; ``listen`` sets its transport's options."""
    peer = PeerConfig(address=address, options=variant.peer_options(pki))
    listening = {}
    if listen:
        options = {**variant.listen_options(pki), **listen}
        listening = {variant.scheme: ListenConfig("127.0.0.1", 0, options)}
    return NodeConfig(name="client", listen=listening, peers={"server": peer})


def collector(into: list[object], gate: asyncio.Event | None = None) -> Actor:
    async def actor(ctx: ActorContext) -> None:
        if gate is not None:
            await gate.wait()
        async for message in ctx:
            into.append(message)
    return actor


def losses(node: Node) -> dict[str, int]:
    total = node.stats().total
    return {name: total[name] for name in LOSS_COUNTERS}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- closing delivers --------------------------------------------------------------


async def test_leaving_a_node_right_after_sending_delivers_every_message(
    variant: Variant, pki: Pki
) -> None:
    count = 20_000
    received: list[object] = []
    async with asyncio.timeout(4 * WAIT_LIMIT), Node(server_config(variant, pki)) as server:
        server.spawn(collector(received), name="sink")
        address = server.address(variant.scheme)
        async with Node(client_config(variant, pki, address)) as client:
            sink = client.ref("server/sink")  # a fresh peer: its connection is not made yet
            for number in range(count):
                await sink.send(number)
        await wait_for(lambda: len(received) == count, "every message")
    assert received == list(range(count))
    assert losses(client) == dict.fromkeys(LOSS_COUNTERS, 0)


async def test_a_reply_taken_just_before_the_caller_leaves_is_not_counted_lost(
    variant: Variant, pki: Pki
) -> None:
    """The caller acknowledges what it took before it closes (quic holds acknowledgements
    back a little): the node that answered counts nothing lost."""
    async with asyncio.timeout(4 * WAIT_LIMIT), Node(server_config(variant, pki)) as server:
        server.spawn(echo, name="echo")
        address = server.address(variant.scheme)
        for attempt in range(3):
            async with Node(client_config(variant, pki, address)) as client:
                assert await client.ref("server/echo").rpc(attempt, timeout=WAIT_LIMIT) == attempt
        await wait_for(lambda: server.stats().total["packets_received"] >= 3, "the calls")
        await asyncio.sleep(0.3)  # the callers' closes reach the server
        assert losses(server) == dict.fromkeys(LOSS_COUNTERS, 0)


async def test_what_never_left_is_counted_in_messages_by_the_end_of_the_grace(
    variant: Variant, pki: Pki
) -> None:
    # Nobody listens there: the connection is never made, so every message is unsent:
    # counted when the attempt finds the peer unreachable (a refusal drops what
    # waited for it), or when the grace ends, whichever comes first.
    address = f"{variant.scheme}://127.0.0.1:{free_port()}"
    client = Node(client_config(variant, pki, address))
    async with asyncio.timeout(4 * WAIT_LIMIT):
        await client.start()
        sink = client.ref("server/sink")
        for number in range(300):
            sink.try_send(number)
        await client.close(grace=0.2)
    assert client.stats().total["messages_sent"] == 300
    total = client.stats().total
    assert total["closed_unsent"] + total["peer_unreachable"] == 300


# -- an awaited send waits; try_send raises ---------------------------------------------


async def test_an_awaited_send_waits_while_the_link_is_full_and_nothing_is_lost(
    variant: Variant, pki: Pki
) -> None:
    count, payload = 20_000, b"x" * 1000  # 20 MB: past the kernel buffers and the queue
    gate = asyncio.Event()
    received: list[object] = []
    async with asyncio.timeout(4 * WAIT_LIMIT), Node(server_config(variant, pki)) as server:
        server.spawn(collector(received, gate), name="sink", mailbox_size=16)
        config = client_config(variant, pki, server.address(variant.scheme),
                               queue_limit=256 * 1024)
        async with Node(config) as client:
            sink = client.ref("server/sink")

            async def send_all() -> None:
                for number in range(count):
                    await sink.send([number, payload])

            sender = asyncio.ensure_future(send_all())
            busy: list[BaseException] = []
            probes = 0  # try_sends that went through before the link was full

            def link_is_busy() -> bool:
                nonlocal probes
                try:
                    sink.try_send([-1, b""])
                    probes += 1
                except LinkBusy as exc:
                    busy.append(exc)
                return bool(busy) or sender.done()

            await wait_for(link_is_busy, "the link to report itself busy")
            assert not sender.done()  # the sender waits: nothing is dropped for it
            assert isinstance(busy[0], MailboxFull)
            assert "queue" in str(busy[0])
            gate.set()
            await sender
        await wait_for(lambda: len(received) == count + probes, "every message")
    numbers = [message[0] for message in received if message[0] != -1]  # type: ignore[index]
    assert numbers == list(range(count))
    assert losses(server) == dict.fromkeys(LOSS_COUNTERS, 0)
    assert losses(client) == dict.fromkeys(LOSS_COUNTERS, 0)


# -- a full mailbox over quic ------------------------------------------------------------


async def test_a_mailbox_overrun_is_delivered_or_counted_in_messages_on_the_receiver(
    variant: Variant, pki: Pki
) -> None:
    # 5 MB, far past what a parked connection's backlog holds (1 MiB with this
    # max_message_size): tcp stops reading and delivers all; quic, which cannot,
    # counts each message it drops.
    count, payload = 5000, b"x" * 1000
    gate = asyncio.Event()
    received: list[list[object]] = []
    config = server_config(variant, pki, max_message_size=4096)
    async with asyncio.timeout(4 * WAIT_LIMIT), Node(config) as server:
        server.spawn(collector(received, gate), name="sink", mailbox_size=10)  # type: ignore[arg-type]
        async with Node(client_config(variant, pki, server.address(variant.scheme))) as client:
            sink = client.ref("server/sink")

            async def send_all() -> None:
                for number in range(count):
                    await sink.send([number, payload])

            sender = asyncio.ensure_future(send_all())
            await wait_for(lambda: server.stats().total["messages_received"] > 1000
                           or sender.done(), "an overrun")
            gate.set()
            await sender
            await wait_for(
                lambda: len(received) + server.stats().total["mailbox_full"] == count,
                "every message delivered or counted")
    numbers = [message[0] for message in received]
    assert numbers == sorted(numbers)  # type: ignore[type-var]
    if variant.scheme == "tcp":
        assert numbers == list(range(count))


# -- bad input is counted --------------------------------------------------------------


async def test_a_length_prefix_over_the_limit_closes_the_connection_and_counts_malformed() -> None:
    config = NodeConfig(name="server", listen={"tcp": ListenConfig("127.0.0.1", 0)})
    async with asyncio.timeout(4 * WAIT_LIMIT), Node(config) as server:
        host, port = server.address("tcp").removeprefix("tcp://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(0xFFFFFFFF.to_bytes(4, "big") + b"x" * 100)
        assert await reader.read() == b""  # closed
        writer.close()
        await wait_for(lambda: server.stats().total["malformed"] == 1, "the count")
