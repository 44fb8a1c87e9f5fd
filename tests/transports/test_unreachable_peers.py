"""A peer that cannot be reached fails the calls to it at once, with PeerUnreachable.

Nothing listening (a refused tcp connection, an ICMP "port unreachable" for
udp and quic) and a server whose certificate does not verify (tcp with TLS,
quic) are known within a round trip; a caller must hear it then, not at its
deadline. Every call here has a long timeout, so a call that waits for its
deadline fails the test by its type (RpcTimeout), whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import pytest

from certs import Pki
from nodes import WAIT_LIMIT
from relay_core import (
    ActorContext,
    ActorRef,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
    PeerUnreachable,
    PluginRegistry,
    Rpc,
)
from relay_core.tools.demo import echo

LONG = 30.0
"""A call's timeout: far beyond what an unreachable peer may take to be noticed."""

INSTALLED = set(PluginRegistry.load().transport_schemes())


@dataclass(frozen=True)
class Case:
    """How a client fails to reach a server, and a server it does reach on the same port."""

    name: str
    scheme: str
    failing_server: Callable[[Pki], Mapping[str, object]] | None
    """Listener options of a server the client must refuse; None: nothing listens."""
    good_server: Callable[[Pki], Mapping[str, object]]
    peer_options: Callable[[Pki], Mapping[str, object]]
    reason: str
    """Words the error carries."""


def _plain(pki: Pki) -> Mapping[str, object]:
    return {}


def _trusted(pki: Pki) -> Mapping[str, object]:
    return {"certificate": str(pki.server_cert), "private_key": str(pki.server_key)}


def _untrusted(pki: Pki) -> Mapping[str, object]:
    return {"certificate": str(pki.other_server_cert), "private_key": str(pki.other_server_key)}


CASES = [
    Case("udp-port-unreachable", "udp", None, _plain, _plain, "refused"),
    Case("tcp-refused", "tcp", None, _plain, _plain, "refused"),
    Case("tcp-tls-wrong-ca", "tcp", _untrusted, _trusted,
         lambda pki: {"tls": True, "ca": str(pki.ca_cert)}, "certificate"),
    Case("quic-wrong-ca", "quic", _untrusted, _trusted,
         lambda pki: {"ca": str(pki.ca_cert)}, "certificate"),
    Case("quic-port-unreachable", "quic", None, _trusted,
         lambda pki: {"ca": str(pki.ca_cert)}, "refused"),
    Case("quic-datagram-port-unreachable", "quic", None, _trusted,
         lambda pki: {"ca": str(pki.ca_cert), "mode": "datagram"}, "refused"),
]


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = request.param
    if chosen.scheme not in INSTALLED:
        pytest.skip(f"the {chosen.scheme} transport is not installed")
    return chosen



@pytest.fixture
def free_port(case: Case) -> Iterator[int]:
    """A loopback port nothing listens on, for the case's socket type."""
    kind = socket.SOCK_DGRAM if case.scheme in ("udp", "quic") else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


def server_config(scheme: str, port: int, options: Mapping[str, object]) -> NodeConfig:
    return NodeConfig(name="server", listen={scheme: ListenConfig("127.0.0.1", port, options)})


def client_config(case: Case, pki: Pki, port: int, *, also: Mapping[str, str] | None = None,
                  **listen: ListenConfig) -> NodeConfig:
    """A client whose peer "server" is on ``port``; ``also`` names more peers by address."""
    addresses = {"server": f"{case.scheme}://127.0.0.1:{port}", **(also or {})}
    peers = {name: PeerConfig(address=address, options=case.peer_options(pki))
             for name, address in addresses.items()}
    return NodeConfig(name="client", listen=listen, peers=peers)


async def call_until_answered(ref: ActorRef, request: object) -> object:
    """Call until the peer answers; while it is known unreachable, each call fails at once."""
    async with asyncio.timeout(WAIT_LIMIT):
        while True:
            try:
                return await ref.rpc(request, timeout=LONG)
            except PeerUnreachable:
                await asyncio.sleep(0.05)


# -- a pending call fails at once ------------------------------------------------------


async def test_a_pending_call_to_an_unreachable_peer_fails_with_peer_unreachable(
        case: Case, pki: Pki, free_port: int) -> None:
    failing = (None if case.failing_server is None
               else Node(server_config(case.scheme, free_port, case.failing_server(pki))))
    if failing is not None:
        await failing.start()
    try:
        async with Node(client_config(case, pki, free_port)) as client:
            with pytest.raises(PeerUnreachable) as caught:
                await client.ref("server/echo").rpc("hello?", timeout=LONG)
    finally:
        if failing is not None:
            await failing.close()
    error = caught.value
    assert error.address == f"{case.scheme}://127.0.0.1:{free_port}"
    assert case.reason in str(error).lower(), str(error)


async def test_after_the_failure_a_call_reaches_the_peer_that_has_come_up(
        case: Case, pki: Pki, free_port: int) -> None:
    failing = (None if case.failing_server is None
               else Node(server_config(case.scheme, free_port, case.failing_server(pki))))
    if failing is not None:
        await failing.start()
    async with Node(client_config(case, pki, free_port)) as client:
        ref = client.ref("server/echo")
        try:
            with pytest.raises(PeerUnreachable):
                await ref.rpc("hello?", timeout=LONG)
        finally:
            if failing is not None:
                await failing.close()
        async with Node(server_config(case.scheme, free_port, case.good_server(pki))) as server:
            server.spawn(echo, name="echo")
            assert await call_until_answered(ref, "hello again") == "hello again"


# -- only calls to that peer -----------------------------------------------------------


async def test_an_unreachable_peer_fails_only_the_calls_to_it(
        case: Case, pki: Pki, free_port: int) -> None:
    release = asyncio.Event()

    async def slow_echo(ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                await release.wait()
                message.respond(message.request)

    async with Node(server_config(case.scheme, 0, case.good_server(pki))) as live:
        live.spawn(slow_echo, name="slow")
        config = client_config(case, pki, free_port, also={"live": live.address(case.scheme)})
        async with Node(config) as client:
            answered = asyncio.ensure_future(client.ref("live/slow").rpc("kept", timeout=LONG))
            with pytest.raises(PeerUnreachable):
                await client.ref("server/echo").rpc("lost", timeout=LONG)
            assert not answered.done()
            release.set()
            assert await answered == "kept"


# -- while known unreachable, send and rpc raise at once --------------------------------


async def test_while_a_refusing_tcp_peer_backs_off_send_and_rpc_raise_at_once(
        pki: Pki) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    # A back-off far longer than the test: the peer stays "known unreachable" throughout.
    hold = {"backoff_initial": 3600.0, "backoff_max": 3600.0}
    case = CASES[1]
    config = client_config(case, pki, port, tcp=ListenConfig("127.0.0.1", 0, hold))
    async with Node(config) as client:
        ref = client.ref("server/echo")
        with pytest.raises(PeerUnreachable):
            await ref.rpc("first", timeout=LONG)
        with pytest.raises(PeerUnreachable) as caught:
            await ref.send("a message")
        assert caught.value.retry_after > 60
        with pytest.raises(PeerUnreachable):
            ref.try_send("another")
        with pytest.raises(PeerUnreachable):
            await ref.rpc("second", timeout=LONG)
        assert client.stats().total["send_errors"] >= 1


# -- the command line --------------------------------------------------------------------

CLI = [sys.executable, "-m", "relay_core.tools.cli"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=WAIT_LIMIT,
                          check=False)


@pytest.fixture
def refused_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_cli_send_to_a_refusing_port_fails_in_one_line(refused_tcp_port: int) -> None:
    result = run_cli("send", f"tcp://127.0.0.1:{refused_tcp_port}/echo", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    reason = result.stderr.strip().splitlines()[-1]  # after the node's own warning, if any
    assert reason.startswith("net-relay send: PeerUnreachable: "), result.stderr
    assert "refused" in reason.lower()


def test_the_cli_rpc_to_a_refusing_port_fails_with_peer_unreachable(
        refused_tcp_port: int) -> None:
    result = run_cli("rpc", f"tcp://127.0.0.1:{refused_tcp_port}/echo", "1", "--timeout", "30")
    assert result.returncode == 1
    reason = result.stderr.strip().splitlines()[-1]
    assert reason.startswith("net-relay rpc: PeerUnreachable: "), result.stderr
    assert "RpcTimeout" not in result.stderr
