"""Nothing a plugin or the node's own code raises escapes a transport callback.

A third-party codec with a bug (its decode raises KeyError, its encode
RuntimeError) costs the frame it was handling: that is counted as
``internal_errors``, logged at a bounded rate, and the node keeps answering,
over a datagram transport and over a stream.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

import pytest

from nodes import WAIT_LIMIT, wait_for
from relay_core import (
    ActorContext,
    Codec,
    HostPort,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
    PeerUnreachable,
    RemoteError,
    Rpc,
    RpcTimeout,
    Transport,
    hookimpl,
)
from relay_core.plugins.registry import PluginRegistry
from relay_core.testing import MemoryNetwork

MARKER_DECODE = "undecodable"
MARKER_ENCODE = "unencodable"


def _mentions(value: object, marker: str) -> bool:
    if isinstance(value, str):
        return marker in value
    if isinstance(value, dict):
        return any(_mentions(item, marker) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_mentions(item, marker) for item in value)
    return False


class BuggyCodec(Codec):
    """JSON, except that it fails the way a buggy third-party codec would: not with
    the library's CodecError but with whatever its code happened to raise."""

    name: ClassVar[str] = "buggy"

    def encode(self, obj: object) -> bytes:
        if _mentions(obj, MARKER_ENCODE):
            raise RuntimeError("the buggy encoder tripped over itself")
        return json.dumps(obj).encode()

    def decode(self, data: bytes) -> object:
        value = json.loads(data)
        if value == MARKER_DECODE:
            raise KeyError("the buggy decoder lost its table")
        return value


class BuggyPlugin:
    @staticmethod
    @hookimpl
    def net_relay_codecs() -> list[type[Codec]]:
        return [BuggyCodec]


async def prefixer(ctx: ActorContext) -> None:
    """Answers a request with "un" in front of it: "encodable" gets "unencodable"."""
    async for message in ctx:
        if isinstance(message, Rpc):
            message.respond(f"un{message.request}")


async def sink(ctx: ActorContext) -> None:
    async for _ in ctx:
        pass


def internal_errors(node: Node) -> int:
    return node.stats().total["internal_errors"]


@asynccontextmanager
async def two_nodes(scheme: str) -> AsyncIterator[tuple[Node, Node]]:
    """beta hosts ``prefixer`` and ``sink``; alpha calls it as peer ``beta`` in the buggy codec."""
    listen = {scheme: ListenConfig("127.0.0.1", 0)}
    registry = PluginRegistry.load(plugins=[BuggyPlugin()])
    async with Node(NodeConfig(name="beta", listen=listen), registry=registry) as beta:
        beta.spawn(prefixer, name="prefixer")
        beta.spawn(sink, name="sink")
        peers = {"beta": PeerConfig(address=beta.address(scheme), codec="buggy")}
        config = NodeConfig(name="alpha", listen=listen, peers=peers)
        async with Node(config, registry=PluginRegistry.load(plugins=[BuggyPlugin()])) as alpha:
            yield alpha, beta


async def answers(alpha: Node) -> bool:
    return await alpha.ref("beta/prefixer").rpc("do", timeout=WAIT_LIMIT) == "undo"


@pytest.mark.parametrize("scheme", ["udp", "tcp"])
async def test_a_decode_that_raises_is_counted_and_the_node_keeps_answering(
        scheme: str, caplog: pytest.LogCaptureFixture) -> None:
    async with two_nodes(scheme) as (alpha, beta):
        await alpha.ref("beta/sink").send(MARKER_DECODE)
        await wait_for(lambda: internal_errors(beta) == 1, "the message's internal error")
        assert await answers(alpha)
    assert "KeyError" in caplog.text and "buggy" in caplog.text


@pytest.mark.parametrize("scheme", ["udp", "tcp"])
async def test_a_request_whose_decode_raises_is_refused_at_once(scheme: str) -> None:
    async with two_nodes(scheme) as (alpha, beta):
        with pytest.raises(RemoteError, match="could not be decoded"):
            await alpha.ref("beta/prefixer").rpc(MARKER_DECODE, timeout=WAIT_LIMIT)
        assert internal_errors(beta) == 1
        assert await answers(alpha)


@pytest.mark.parametrize("scheme", ["udp", "tcp"])
async def test_a_reply_whose_encode_raises_fails_the_call_and_the_actor_lives_on(
        scheme: str) -> None:
    async with two_nodes(scheme) as (alpha, beta):
        with pytest.raises(RemoteError, match="RuntimeError"):
            await alpha.ref("beta/prefixer").rpc("encodable", timeout=WAIT_LIMIT)
        assert internal_errors(beta) == 1
        assert await answers(alpha)


@pytest.mark.parametrize("scheme", ["udp", "tcp"])
async def test_an_encode_that_raises_while_a_packet_is_handled_stays_inside_the_node(
        scheme: str) -> None:
    # The refusal for an unknown actor names it, in the request's codec, from within
    # the transport's callback: here that encode raises.
    async with two_nodes(scheme) as (alpha, beta):
        with pytest.raises(RpcTimeout):
            await alpha.ref(f"beta/{MARKER_ENCODE}").rpc("hi", timeout=0.5)
        assert internal_errors(beta) == 1
        assert await answers(alpha)


async def test_internal_errors_are_logged_at_a_bounded_rate(
        caplog: pytest.LogCaptureFixture) -> None:
    async with two_nodes("udp") as (alpha, beta):
        with caplog.at_level(logging.WARNING, logger="relay_core"):
            for _ in range(20):
                await alpha.ref("beta/sink").send(MARKER_DECODE)
            await wait_for(lambda: internal_errors(beta) == 20, "twenty internal errors")
            assert await answers(alpha)
    logged = [r for r in caplog.records if "KeyError" in r.getMessage()]
    assert 1 <= len(logged) < 20


class GarbledReports:
    """A transport plugin with a bug: with every packet it also reports its peer
    unreachable, holding for a ``retry_after`` that is not a number of seconds."""

    def __init__(self, network: MemoryNetwork) -> None:
        base = network.transport_class

        class Garbling(base):  # type: ignore[valid-type, misc]
            def send(self, destination: HostPort, packet: bytes) -> None:
                super().send(destination, packet)
                garbled = PeerUnreachable("memory://nowhere:1", "a buggy transport says so")
                garbled.retry_after = "soon"  # type: ignore[assignment]
                self.events.send_failed(destination, garbled)

        self.transport = Garbling

    @hookimpl
    def net_relay_transports(self) -> list[type[Transport]]:
        return [self.transport]


async def test_a_transport_report_that_trips_the_node_is_counted_and_sending_goes_on() -> None:
    network = MemoryNetwork()
    registry = PluginRegistry.load(plugins=[GarbledReports(network)])
    listen = {"memory": ListenConfig("memory-host", 0)}
    async with Node(NodeConfig(name="beta", listen=listen), registry=registry) as beta:
        beta.spawn(prefixer, name="prefixer")
        async with Node(NodeConfig(name="alpha", listen=listen), registry=registry) as alpha:
            ref = alpha.ref(f"{beta.address('memory')}/prefixer")
            for attempt in range(3):
                assert await ref.rpc(attempt, timeout=WAIT_LIMIT) == f"un{attempt}"
            assert internal_errors(alpha) >= 3
