"""Typed replies: ``rpc(..., expect=T)`` returns a T or raises UnexpectedReply, local and remote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from nodes import udp_config
from relay_core import (
    ActorContext,
    ActorRef,
    Node,
    NodeConfig,
    RelayError,
    Rpc,
    RpcError,
    UnexpectedReply,
    message,
)


@message("test_typed_replies.Greeting")
@dataclass
class Greeting:
    name: str


@message("test_typed_replies.Hello")
@dataclass
class Hello:
    text: str


async def greeter(ctx: ActorContext) -> None:
    """Answers a Greeting with a Hello, and anything else with a plain dict."""
    async for msg in ctx:
        if not isinstance(msg, Rpc):
            continue
        if isinstance(msg.request, Greeting):
            msg.respond(Hello(f"hello, {msg.request.name}"))
        else:
            msg.respond({"hello": msg.request})


@asynccontextmanager
async def greeter_ref(where: str) -> AsyncIterator[ActorRef]:
    """A ref to the greeter: on the caller's own node, or on another node over udp."""
    if where == "local":
        async with Node(NodeConfig(listen={})) as node:
            yield node.spawn(greeter, name="greeter")
        return
    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(greeter, name="greeter")
        yield alpha.ref(f"{beta.address('udp')}/greeter")


WHERE = pytest.mark.parametrize("where", ["local", "remote"])


@WHERE
async def test_a_reply_of_the_expected_type_is_returned_as_that_type(where: str) -> None:
    async with greeter_ref(where) as ref:
        reply = await ref.rpc(Greeting("ada"), timeout=10.0, expect=Hello)
    assert reply == Hello("hello, ada")
    assert reply.text == "hello, ada"


@WHERE
async def test_a_reply_of_another_type_raises_unexpected_reply_naming_both(where: str) -> None:
    async with greeter_ref(where) as ref:
        with pytest.raises(UnexpectedReply) as caught:
            await ref.rpc("ada", timeout=10.0, expect=Hello)
    error = caught.value
    assert isinstance(error, RpcError) and isinstance(error, RelayError)
    assert isinstance(error, TypeError)
    assert error.reply == {"hello": "ada"}
    assert error.expected is Hello
    text = str(error)
    assert "dict" in text and "Hello" in text and "greeter" in text


@WHERE
async def test_without_expect_any_reply_is_returned_as_it_came(where: str) -> None:
    async with greeter_ref(where) as ref:
        assert await ref.rpc("ada", timeout=10.0) == {"hello": "ada"}
        assert await ref.rpc(Greeting("ada"), timeout=10.0) == Hello("hello, ada")


@WHERE
async def test_expect_must_be_a_class(where: str) -> None:
    async with greeter_ref(where) as ref:
        with pytest.raises(TypeError, match="expect must be a class"):
            await ref.rpc(Greeting("ada"), timeout=10.0, expect=Hello("x"))  # type: ignore[call-overload]


async def test_a_handler_reads_a_typed_request_from_a_typed_rpc() -> None:
    seen: list[str] = []

    def read(rpc: Rpc[Greeting]) -> None:
        seen.append(rpc.request.name)  # typed: mypy checks .name on a Greeting

    async def handler(ctx: ActorContext) -> None:
        async for msg in ctx:
            if isinstance(msg, Rpc) and isinstance(msg.request, Greeting):
                read(msg)
                msg.respond(None)

    async with Node(NodeConfig(listen={})) as node:
        ref = node.spawn(handler, name="reader")
        await ref.rpc(Greeting("ada"), timeout=10.0)
    assert seen == ["ada"]
