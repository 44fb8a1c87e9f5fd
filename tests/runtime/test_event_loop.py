"""The event loop net-relay runs on: uvloop where it is installed, else the stock loop.

``auto`` takes uvloop when ``net-relay[fast]`` installed it (measured faster on
most bench rows); ``asyncio`` always runs the stock loop.

``relay_core.run`` is the one place that chooses; the CLI and the bench
workers go through it. Each test here starts its own loop with ``run``, so
the tests are plain functions, not ``async def`` (those get the stock loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
import logging
import socket
import sys
from collections.abc import Mapping

import pytest

from certs import Pki
from nodes import wait_for
from relay_core import (
    ConfigError,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
    PluginRegistry,
    run,
)
from relay_core.runtime.loop import choose, loop_name
from relay_core.tools.cli import _ASYNC_COMMANDS, main
from relay_core.tools.demo import counter, echo

try:
    import uvloop
except ImportError:  # the tests that need it are skipped, and say why
    uvloop = None  # type: ignore[assignment]

needs_uvloop = pytest.mark.skipif(uvloop is None, reason="uvloop is not installed "
                                  "(pip install 'net-relay[fast]')")
VARIABLE = "NET_RELAY_LOOP"


async def running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def is_stock(loop: asyncio.AbstractEventLoop) -> bool:
    return isinstance(loop, asyncio.BaseEventLoop)  # uvloop's Loop does not derive from it


def is_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return uvloop is not None and isinstance(loop, uvloop.Loop)


@pytest.fixture(autouse=True)
def no_loop_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)


@pytest.fixture
def without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import uvloop`` fail, as it does where the extra is not installed."""
    monkeypatch.setitem(sys.modules, "uvloop", None)


# -- choosing the loop -----------------------------------------------------------------


@needs_uvloop
def test_auto_takes_uvloop_when_it_is_installed() -> None:
    assert is_uvloop(run(running_loop()))
    assert is_uvloop(run(running_loop(), loop="auto"))
    assert loop_name("auto").startswith("uvloop ")


@needs_uvloop
def test_uvloop_runs_when_asked_for_by_argument_or_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_uvloop(run(running_loop(), loop="uvloop"))
    monkeypatch.setenv(VARIABLE, "uvloop")
    assert is_uvloop(run(running_loop()))
    assert loop_name().startswith("uvloop ")


def test_auto_runs_on_the_stock_loop_without_uvloop(without_uvloop: None) -> None:
    assert is_stock(run(running_loop()))
    assert loop_name() == "asyncio"


@pytest.mark.parametrize(("variable", "argument"), [("asyncio", None), (None, "asyncio"),
                                                    ("uvloop", "asyncio"), ("auto", "asyncio")])
def test_asyncio_from_the_argument_or_the_environment_runs_on_the_stock_loop(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, argument: str | None
) -> None:
    if variable is not None:
        monkeypatch.setenv(VARIABLE, variable)
    assert is_stock(run(running_loop(), loop=argument))


@needs_uvloop
def test_the_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "asyncio")
    assert is_uvloop(run(running_loop(), loop="uvloop"))


def test_an_empty_environment_variable_means_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "")
    assert choose() == choose("auto")


def test_run_returns_what_main_returns_and_raises_what_it_raises() -> None:
    async def answer() -> int:
        return 42

    async def fail() -> None:
        raise KeyError("inside")

    for loop in ("auto", "asyncio"):
        assert run(answer(), loop=loop) == 42
        with pytest.raises(KeyError, match="inside"):
            run(fail(), loop=loop)


@pytest.mark.parametrize(("variable", "argument", "named"), [
    (None, "fast", "loop 'fast'"),
    ("fast", None, "NET_RELAY_LOOP 'fast'"),
    (None, "UVLOOP", "loop 'UVLOOP'"),
])
def test_a_bad_choice_is_refused_with_the_allowed_values_before_main_starts(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, argument: str | None, named: str
) -> None:
    if variable is not None:
        monkeypatch.setenv(VARIABLE, variable)
    main = running_loop()
    with pytest.raises(ConfigError, match=f"{named} is not allowed: choose auto, asyncio, uvloop"):
        run(main, loop=argument)
    assert inspect.getcoroutinestate(main) == inspect.CORO_CLOSED  # closed, never started


def test_asking_for_uvloop_without_it_says_how_to_install_it(without_uvloop: None) -> None:
    with pytest.raises(ConfigError, match=r"needs uvloop.*pip install 'net-relay\[fast\]'"):
        run(running_loop(), loop="uvloop")


@needs_uvloop
def test_the_loop_name_says_which_loop_and_its_version() -> None:
    assert loop_name("asyncio") == "asyncio"
    assert loop_name("uvloop") == f"uvloop {importlib.metadata.version('uvloop')}"
    assert loop_name() == loop_name("uvloop")  # auto


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def quiet_root_logger(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() adds a handler to the root logger; keep it out of the other tests."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)


@pytest.mark.usefixtures("quiet_root_logger")
@pytest.mark.parametrize(("variable", "flags", "expected"), [
    ("asyncio", [], "asyncio"),
    (None, ["--loop", "asyncio"], "asyncio"),
    ("uvloop", ["--loop", "asyncio"], "asyncio"),
    pytest.param(None, [], "uvloop", marks=needs_uvloop),
    pytest.param("uvloop", [], "uvloop", marks=needs_uvloop),
    pytest.param("asyncio", ["--loop", "uvloop"], "uvloop", marks=needs_uvloop),
])
def test_the_cli_runs_its_command_on_the_chosen_loop(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, flags: list[str], expected: str
) -> None:
    if variable is not None:
        monkeypatch.setenv(VARIABLE, variable)
    seen: list[asyncio.AbstractEventLoop] = []

    async def send(args: object) -> int:
        seen.append(asyncio.get_running_loop())
        return 0

    monkeypatch.setitem(_ASYNC_COMMANDS, "send", send)
    assert main([*flags, "send", "udp://127.0.0.1:9/anyone", "1"]) == 0
    assert main(["send", *flags, "udp://127.0.0.1:9/anyone", "1"]) == 0  # after the command too
    assert [is_uvloop(loop) for loop in seen] == [expected == "uvloop"] * 2


@needs_uvloop
@pytest.mark.usefixtures("quiet_root_logger")
def test_the_cli_sends_a_real_message_from_uvloop() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(20.0)
        address = f"udp://127.0.0.1:{sink.getsockname()[1]}/anyone"
        assert main(["--loop", "uvloop", "send", address, '{"hello": "uvloop"}']) == 0
        assert b"uvloop" in sink.recv(65535)


@pytest.mark.usefixtures("quiet_root_logger")
def test_a_bad_loop_in_the_environment_fails_the_cli_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(VARIABLE, "fast")
    assert main(["send", "udp://127.0.0.1:9/anyone", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NET_RELAY_LOOP 'fast' is not allowed" in err


# -- two nodes on uvloop -------------------------------------------------------------------

INSTALLED = set(PluginRegistry.load().transport_schemes())



def listen_and_peer_options(kind: str, pki: Pki) -> tuple[Mapping[str, object],
                                                          Mapping[str, object]]:
    server = {"certificate": str(pki.server_cert), "private_key": str(pki.server_key)}
    if kind == "tcp-tls":
        return server, {"tls": True, "ca": str(pki.ca_cert)}
    if kind == "quic":
        return server, {"ca": str(pki.ca_cert)}
    return {}, {}


async def exchange(kind: str, pki: Pki) -> tuple[object, object, str]:
    """Two nodes: an RPC to an echo, then 20 messages to a counter: the count, the echo's
    reply, and the module of the loop it all ran on."""
    scheme = kind.split("-")[0]
    listen, peer = listen_and_peer_options(kind, pki)
    config = NodeConfig(name="server", listen={scheme: ListenConfig("127.0.0.1", 0, listen)})
    async with Node(config) as server:
        server.spawn(counter, name="counter")
        server.spawn(echo, name="echo")
        target = PeerConfig(address=server.address(scheme), options=peer)
        async with Node(NodeConfig(name="client", listen={}, peers={"server": target})) as client:
            reply = await client.ref("server/echo").rpc({"n": [1, 2]}, timeout=5.0)
            for index in range(20):
                await client.ref("server/counter").send(index)
            await wait_for(lambda: server.stats().total["messages_received"] >= 20, "messages")
            count = await client.ref("server/counter").rpc("count?", timeout=5.0)
    return count, reply, type(asyncio.get_running_loop()).__module__


@needs_uvloop
@pytest.mark.parametrize("kind", ["udp", "tcp", "tcp-tls", "quic"])
def test_two_nodes_exchange_messages_and_an_rpc_on_uvloop(kind: str, pki: Pki) -> None:
    if kind.split("-")[0] not in INSTALLED:
        pytest.skip(f"the {kind} transport is not installed")
    assert run(exchange(kind, pki), loop="uvloop") == (20, {"n": [1, 2]}, "uvloop")



@needs_uvloop
def test_a_tls_tcp_listener_on_uvloop_logs_a_failed_handshake_and_serves_the_next_client(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    # uvloop reads an accepted connection as soon as connection_made returns: the
    # listener must start TLS before any stream sees the client's bytes.
    if "tcp" not in INSTALLED:
        pytest.skip("the tcp transport is not installed")
    listen, peer = listen_and_peer_options("tcp-tls", pki)
    config = NodeConfig(name="server", listen={"tcp": ListenConfig("127.0.0.1", 0, listen)})

    async def garbage_then_a_node() -> object:
        async with Node(config) as server:
            server.spawn(echo, name="echo")
            host, port = server.address("tcp").removeprefix("tcp://").rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"\x00" * 64)
            with contextlib.suppress(ConnectionResetError):  # closed or reset: either way, gone
                await reader.read()
            writer.close()
            target = PeerConfig(address=server.address("tcp"), options=peer)
            async with Node(NodeConfig(name="client", listen={},
                                       peers={"server": target})) as client:
                return await client.ref("server/echo").rpc("after garbage", timeout=5.0)

    with caplog.at_level(logging.WARNING, logger="relay_transports._tcp"):
        assert run(garbage_then_a_node(), loop="uvloop") == "after garbage"
    assert "tls handshake with tcp client 127.0.0.1" in caplog.text
