"""A node on several transports at once, and the stream fallback for large messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from certs import make_pki
from nodes import collector, wait_for
from relay_core import (
    ConfigError,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
    PluginRegistry,
)
from relay_core.tools.demo import echo

INSTALLED = set(PluginRegistry.load().transport_schemes())



async def test_a_large_message_to_a_datagram_peer_falls_back_to_its_stream_address() -> None:
    received: list[object] = []
    server_config = NodeConfig(name="server", listen={
        "udp": ListenConfig("127.0.0.1", 0), "tcp": ListenConfig("127.0.0.1", 0)})
    async with Node(server_config) as server:
        server.spawn(collector(received), name="sink")
        server.spawn(echo, name="echo")
        peer = PeerConfig(address=server.address("udp"),
                          options={"fallback": server.address("tcp")})
        async with Node(NodeConfig(name="client", peers={"server": peer})) as client:
            big = b"\x5a" * (1024 * 1024)
            await client.ref("server/sink").send("small")
            await client.ref("server/sink").send(big)
            assert await client.ref("server/echo").rpc(big, timeout=10.0) == big
            await wait_for(lambda: len(received) == 2, "both messages")
    assert sorted(received, key=len) == ["small", big]


def test_a_fallback_must_name_a_stream_transport() -> None:
    peer = PeerConfig(address="udp://127.0.0.1:9", options={"fallback": "udp://127.0.0.1:10"})
    with pytest.raises(ConfigError, match="stream transport"):
        Node(NodeConfig(name="client", peers={"server": peer}))


@pytest.mark.skipif("quic" not in INSTALLED, reason="the quic transport is not installed")
async def test_one_node_listens_on_udp_tcp_and_quic_and_talks_over_each(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    tls = {"certificate": str(pki.server_cert), "private_key": str(pki.server_key)}
    hub_config = NodeConfig(name="hub", listen={
        "udp": ListenConfig("127.0.0.1", 0), "tcp": ListenConfig("127.0.0.1", 0),
        "quic": ListenConfig("127.0.0.1", 0, tls)})
    async with Node(hub_config) as hub:
        hub.spawn(echo, name="echo")
        peers = {
            "by-udp": PeerConfig(address=hub.address("udp")),
            "by-tcp": PeerConfig(address=hub.address("tcp")),
            "by-quic": PeerConfig(address=hub.address("quic"), options={"ca": str(pki.ca_cert)}),
        }
        async with Node(NodeConfig(name="client", listen={
                "udp": ListenConfig("127.0.0.1", 0)}, peers=peers)) as client:
            for name in peers:
                assert await client.ref(f"{name}/echo").rpc(name, timeout=10.0) == name
            stats = client.stats().peers
    for name in peers:
        assert stats[name]["messages_received"] == 1
