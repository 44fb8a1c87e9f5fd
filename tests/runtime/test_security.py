"""Pre-shared-key sealing and source allowlists on a node: what they let through and what not."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from nodes import LossyRelay, collector, udp_config, wait_for
from relay_core import (
    ConfigError,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
    PeerUnreachable,
    RpcTimeout,
)
from relay_core.protocol.handshake import HELLO_WAITS
from relay_core.protocol.seal import is_sealed
from relay_core.tools.demo import echo

KEY = "11" * 32
OTHER_KEY = "22" * 32
SECRET = "the-plaintext-marker-that-must-not-leak"


def sealed_server(**listen_options: object) -> NodeConfig:
    options = {"keys": {"7": KEY}, **listen_options}
    return NodeConfig(name="server", listen={"udp": ListenConfig("127.0.0.1", 0, options)})


def client_of(address: str, key: str | None = KEY, key_id: str = "7") -> NodeConfig:
    options = {"keys": {key_id: key}} if key else {}
    peers = {"server": PeerConfig(address=address, options=options)}
    return dataclasses.replace(udp_config("client"), peers=peers)



async def test_sealed_messages_and_rpcs_go_through_between_key_holders() -> None:
    received: list[object] = []
    async with Node(sealed_server()) as server:
        server.spawn(collector(received), name="sink")
        server.spawn(echo, name="echo")
        async with Node(client_of(server.address("udp"))) as client:
            await client.ref("server/sink").send(SECRET)
            assert await client.ref("server/echo").rpc(SECRET, timeout=5.0) == SECRET
            await wait_for(lambda: received == [SECRET], "delivery")
        assert server.stats().total["unauthenticated"] == 0


async def test_sealed_datagrams_carry_no_plaintext() -> None:
    async with Node(sealed_server()) as server:
        server.spawn(collector([]), name="sink")
        async with LossyRelay(server.address("udp")) as tap, \
                Node(client_of(tap.url)) as client:
            await client.ref("server/sink").send({"secret": SECRET, "blob": SECRET.encode()})
            await wait_for(lambda: server.stats().total["messages_received"] == 1, "delivery")
            datagrams = tap.captured["server"]
    assert datagrams and all(is_sealed(datagram) for datagram in datagrams)
    for datagram in datagrams:
        assert SECRET.encode() not in datagram
        assert b"sink" not in datagram  # the target actor's name is hidden too


async def test_a_node_without_the_key_cannot_get_a_message_delivered() -> None:
    received: list[object] = []
    async with Node(sealed_server()) as server:
        server.spawn(collector(received), name="sink")
        server.spawn(echo, name="echo")
        async with Node(client_of(server.address("udp"), key=None)) as intruder:
            await intruder.ref("server/sink").send("let me in")
            with pytest.raises(RpcTimeout):
                await intruder.ref("server/echo").rpc("let me in", timeout=0.3)
        await wait_for(lambda: server.stats().total["unauthenticated"] >= 1, "plain refused")
        plain = server.stats().total["unauthenticated"]
        # Under another key, not even the handshake is answered: the server is unreachable.
        async with Node(client_of(server.address("udp"), key=OTHER_KEY)) as intruder:
            with pytest.raises(PeerUnreachable, match="handshake"):
                await intruder.ref("server/sink").send("let me in")
        assert server.stats().total["unauthenticated"] == plain + len(HELLO_WAITS)
        assert server.stats().total["packets_sent"] == 0
    assert received == []


async def test_a_replayed_sealed_datagram_is_rejected_by_the_window() -> None:
    received: list[object] = []
    async with Node(sealed_server()) as server:
        server.spawn(collector(received), name="sink")
        async with LossyRelay(server.address("udp")) as relay, \
                Node(client_of(relay.url)) as client:
            await client.ref("server/sink").send("once")
            await wait_for(lambda: received == ["once"], "delivery")
            datagram = relay.captured["server"][-1]  # after the handshake's hello
            for _ in range(3):
                relay.socket.send_to(datagram, server.address("udp"))
            await wait_for(lambda: server.stats().total["duplicates"] == 3, "replays")
            await asyncio.sleep(0)
    assert received == ["once"]


async def test_a_listener_accepts_only_its_allowed_source_networks() -> None:
    config = dataclasses.replace(udp_config("server"), listen={
        "udp": ListenConfig("127.0.0.1", 0, {"allow": ["10.0.0.0/8"]})})
    async with Node(config) as server:
        server.spawn(echo, name="echo")
        async with Node(udp_config("client")) as client:
            with pytest.raises(RpcTimeout):
                await client.ref(f"{server.address('udp')}/echo").rpc("hi", timeout=0.3)
        assert server.stats().total["not_allowed"] >= 1
    open_config = dataclasses.replace(udp_config("server"), listen={
        "udp": ListenConfig("127.0.0.1", 0, {"allow": ["127.0.0.0/8", "::1/128"]})})
    async with Node(open_config) as server, Node(udp_config("client")) as client:
        server.spawn(echo, name="echo")
        assert await client.ref(f"{server.address('udp')}/echo").rpc("hi", timeout=5.0) == "hi"


@pytest.mark.parametrize(("options", "complaint"), [
    ({"keys": {"7": "too-short"}}, "keys.7"),
    ({"keys": {"seven": KEY}}, "key id 'seven'"),
    ({"keys": {"1": KEY, "2": OTHER_KEY}}, "send_key_id"),
    ({"keys": {"1": KEY}, "send_key_id": 2}, "send_key_id = 2"),
    ({"send_key_id": 1}, "needs keys"),
])
def test_bad_key_settings_are_refused_with_what_is_allowed(
        options: dict[str, object], complaint: str) -> None:
    peers = {"server": PeerConfig(address="udp://127.0.0.1:9", options=options)}
    with pytest.raises(ConfigError, match=complaint):
        Node(dataclasses.replace(udp_config("client"), peers=peers))


def test_one_key_id_may_not_name_two_keys() -> None:
    peers = {"a": PeerConfig(address="udp://127.0.0.1:9", options={"keys": {"1": KEY}}),
             "b": PeerConfig(address="udp://127.0.0.1:10", options={"keys": {"1": OTHER_KEY}})}
    with pytest.raises(ConfigError, match="key id 1"):
        Node(dataclasses.replace(udp_config("client"), peers=peers))


async def test_sealed_messages_and_rpcs_go_through_over_tcp_and_after_the_server_restarts() -> None:
    received: list[object] = []
    listen = {"tcp": ListenConfig("127.0.0.1", 0, {"keys": {"7": KEY}})}
    async with Node(NodeConfig(name="server", listen=listen)) as server:
        server.spawn(collector(received), name="sink")
        server.spawn(echo, name="echo")
        address = server.address("tcp")
        port = int(address.rpartition(":")[2])
        peers = {"server": PeerConfig(address=address, options={"keys": {"7": KEY}})}
        client_config = NodeConfig(name="client", listen={}, peers=peers)
        async with Node(client_config) as client:
            await client.ref("server/sink").send(SECRET)
            assert await client.ref("server/echo").rpc(SECRET, timeout=10.0) == SECRET
            await wait_for(lambda: received == [SECRET], "delivery")
            await server.close()
            listen = {"tcp": ListenConfig("127.0.0.1", port, {"keys": {"7": KEY}})}
            async with Node(NodeConfig(name="server", listen=listen)) as restarted:
                restarted.spawn(echo, name="echo")
                reply = await client.ref("server/echo").rpc("again", timeout=10.0, retries=4)
                assert reply == "again"
