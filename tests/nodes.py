"""Helpers for tests that run nodes: configs, waiting, an actor that keeps what it gets,
raw loopback sockets, and the ``net-relay`` command in a child process."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Self

from relay_core import ActorContext, ListenConfig, NodeConfig, PeerConfig

WAIT_LIMIT = 20.0
INSTALLED_COMMAND = Path(sys.executable).parent / "net-relay"


def udp_config(name: str, **settings: object) -> NodeConfig:
    return NodeConfig(name=name, listen={"udp": ListenConfig("127.0.0.1", 0)}, **settings)  # type: ignore[arg-type]


def with_peers(config: NodeConfig, **peers: PeerConfig) -> NodeConfig:
    return dataclasses.replace(config, peers=peers)


def collector(into: list[object]) -> Callable[[ActorContext], Awaitable[None]]:
    """An actor function that appends every message it receives to ``into``."""
    async def actor(ctx: ActorContext) -> None:
        async for message in ctx:
            into.append(message)
    return actor


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until true; fail (not hang) after a generous limit."""
    async with asyncio.timeout(WAIT_LIMIT):
        while not condition():
            await asyncio.sleep(0.005)


def net_relay_command() -> list[str]:
    """The console script when installed beside this interpreter (whose sys.path does not
    start with the current directory, as a user's would not), else the module."""
    if INSTALLED_COMMAND.exists():
        return [str(INSTALLED_COMMAND)]
    return [sys.executable, "-m", "relay_core"]


@asynccontextmanager
async def net_relay_node(*args: str, cwd: Path | None = None,
                         stop: signal.Signals = signal.SIGTERM) -> AsyncIterator[str]:
    """Run ``net-relay ARGS`` (a command that serves a node, such as ``node`` or ``run``) in
    a child process; yield the udp URL it prints once it listens; then stop it with
    ``stop`` and check that it exits cleanly, without a traceback."""
    process = await asyncio.create_subprocess_exec(
        *net_relay_command(), *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT_LIMIT):
            line = (await process.stdout.readline()).decode()
        assert "listening on udp://" in line, line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        if process.returncode is None:
            process.send_signal(stop)
        async with asyncio.timeout(WAIT_LIMIT):
            _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert "Traceback" not in stderr.decode()


async def run_net_relay(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``net-relay ARGS`` in a child process to its end; what it printed, and its status."""
    process = await asyncio.create_subprocess_exec(
        *net_relay_command(), *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(WAIT_LIMIT):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, stdout.decode(), stderr.decode())


class RawUdp:
    """A plain loopback UDP socket, for reading and forging datagrams."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.url = f"udp://127.0.0.1:{self.port}"

    async def receive(self) -> tuple[bytes, tuple[str, int]]:
        async with asyncio.timeout(WAIT_LIMIT):
            return await self.receive_forever()

    async def receive_forever(self) -> tuple[bytes, tuple[str, int]]:
        """The next datagram; waits with add_reader, which every loop has (uvloop lacks
        ``sock_recvfrom``)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, source = self.sock.recvfrom(65535)
                return data, source
            except BlockingIOError:
                pass
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self.sock.fileno(), _settle, readable)
            try:
                await readable
            finally:
                loop.remove_reader(self.sock.fileno())

    def send_to(self, data: bytes, address: str) -> None:
        host, _, port = address.removeprefix("udp://").rpartition(":")
        self.sock.sendto(data, (host, int(port)))

    def close(self) -> None:
        self.sock.close()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class LossyRelay:
    """A loopback UDP relay between one client and one server that drops chosen datagrams.

    The client sends to ``relay.url``; the relay forwards to the server and
    sends the server's answers back to the client. ``drop_to_server`` and
    ``drop_to_client`` are the 1-based indexes of datagrams to lose.
    """

    def __init__(self, server_url: str, *, drop_to_server: Collection[int] = (),
                 drop_to_client: Collection[int] = ()) -> None:
        self.socket = RawUdp()
        self.url = self.socket.url
        self._server = server_url
        self._drop = {"server": set(drop_to_server), "client": set(drop_to_client)}
        self.forwarded = {"server": 0, "client": 0}
        self.captured: dict[str, list[bytes]] = {"server": [], "client": []}
        """Every datagram the relay read, by the way it was going (dropped ones too)."""
        self._client: tuple[str, int] | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.socket.close()

    async def _run(self) -> None:
        server_host, _, server_port = self._server.removeprefix("udp://").rpartition(":")
        server = (server_host, int(server_port))
        while True:
            data, source = await self.socket.receive_forever()
            direction = "client" if source == server else "server"
            if direction == "server":
                self._client = source
            self.forwarded[direction] += 1
            self.captured[direction].append(data)
            if self.forwarded[direction] in self._drop[direction]:
                continue
            self.socket.sock.sendto(data, server if direction == "server" else self._client)
