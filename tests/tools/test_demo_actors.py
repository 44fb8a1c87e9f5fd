"""The demo actors that ``net-relay node`` hosts: ``forward`` calls another node for its caller."""

from __future__ import annotations

import asyncio

import pytest

from nodes import udp_config
from relay_core import ActorContext, Node, RemoteError, Rpc
from relay_core.tools.demo import spawn_demo_actors


async def test_forward_answers_with_the_reply_of_the_node_it_calls() -> None:
    async with Node(udp_config("server")) as server, Node(udp_config("relay")) as relay, \
            Node(udp_config("caller")) as caller:
        spawn_demo_actors(server)
        spawn_demo_actors(relay)
        request = {"to": f"{server.address('udp')}/echo", "message": {"name": "ada"}}
        reply = await caller.ref(f"{relay.address('udp')}/forward").rpc(request, timeout=10.0)
        assert reply == {"name": "ada"}
        assert server.stats().total["messages_received"] == 1


async def test_forward_calls_an_actor_of_its_own_node_by_its_name() -> None:
    async with Node(udp_config("relay")) as relay, Node(udp_config("caller")) as caller:
        spawn_demo_actors(relay)
        request = {"to": "echo", "message": "here"}
        assert await caller.ref(f"{relay.address('udp')}/forward").rpc(
            request, timeout=10.0) == "here"


async def test_forward_relays_calls_concurrently() -> None:
    """The server answers only once it holds both requests: one call at a time would wait
    for ever."""
    held: list[Rpc] = []

    async def pair(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                held.append(message)
                if len(held) == 2:
                    for rpc in held:
                        rpc.respond(rpc.request)

    async with Node(udp_config("server")) as server, Node(udp_config("relay")) as relay, \
            Node(udp_config("caller")) as caller:
        server.spawn(pair, name="pair")
        spawn_demo_actors(relay)
        forward = caller.ref(f"{relay.address('udp')}/forward")
        to = f"{server.address('udp')}/pair"
        replies = await asyncio.gather(*(forward.rpc({"to": to, "message": n}, timeout=10.0)
                                         for n in range(2)))
        assert sorted(replies) == [0, 1]  # type: ignore[type-var]


async def test_forward_passes_on_the_error_of_the_call_it_made() -> None:
    async with Node(udp_config("server")) as server, Node(udp_config("relay")) as relay, \
            Node(udp_config("caller")) as caller:
        spawn_demo_actors(relay)
        request = {"to": f"{server.address('udp')}/nobody", "message": 1}
        with pytest.raises(RemoteError, match="nobody"):
            await caller.ref(f"{relay.address('udp')}/forward").rpc(request, timeout=10.0)


@pytest.mark.parametrize("request_", [
    "just text", {"message": 1}, {"to": 7, "message": 1}, {"to": "udp://127.0.0.1:1/echo"},
    {"to": "no-such-scheme://127.0.0.1:1/echo", "message": 1}])
async def test_forward_refuses_a_request_it_cannot_relay_with_what_it_takes(
        request_: object) -> None:
    async with Node(udp_config("relay")) as relay, Node(udp_config("caller")) as caller:
        spawn_demo_actors(relay)
        with pytest.raises(RemoteError) as refused:
            await caller.ref(f"{relay.address('udp')}/forward").rpc(request_, timeout=10.0)
    assert "forward" in str(refused.value)
    assert '"to"' in str(refused.value)
