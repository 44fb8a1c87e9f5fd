"""Helpers for tests that run nodes: configs, waiting, and raw loopback sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Callable

from relay_core import ListenConfig, NodeConfig, PeerConfig

WAIT_LIMIT = 20.0


def udp_config(name: str, **settings: object) -> NodeConfig:
    return NodeConfig(name=name, listen={"udp": ListenConfig("127.0.0.1", 0)}, **settings)  # type: ignore[arg-type]


def with_peers(config: NodeConfig, **peers: PeerConfig) -> NodeConfig:
    return dataclasses.replace(config, peers=peers)


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until true; fail (not hang) after a generous limit."""
    async with asyncio.timeout(WAIT_LIMIT):
        while not condition():
            await asyncio.sleep(0.005)


class RawUdp:
    """A plain loopback UDP socket, for reading and forging datagrams."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.url = f"udp://127.0.0.1:{self.port}"

    async def receive(self) -> tuple[bytes, tuple[str, int]]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(WAIT_LIMIT):
            data, source = await loop.sock_recvfrom(self.sock, 65535)
        return data, source

    def send_to(self, data: bytes, address: str) -> None:
        host, _, port = address.removeprefix("udp://").rpartition(":")
        self.sock.sendto(data, (host, int(port)))

    def close(self) -> None:
        self.sock.close()
