"""`net-relay run MODULE:FUNCTION`: the user's own actors on a node from the command line.

Each test runs the installed ``net-relay`` command in a child process, from the folder
that holds the user's module (it imports from the current directory, as uvicorn does).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from nodes import WAIT_LIMIT, net_relay_node, run_net_relay, udp_config
from relay_core import Node, UnknownActor

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "examples" / "run_your_actors"
EXIT_USAGE = 2


def write_config(folder: Path) -> Path:
    config = folder / "node.toml"
    config.write_text('[node]\nname = "app"\n\n[listen.udp]\nhost = "127.0.0.1"\nport = 0\n')
    return config


def running(app: str, folder: Path, config: Path,
            stop: signal.Signals = signal.SIGTERM) -> AbstractAsyncContextManager[str]:
    """Run ``net-relay run APP`` in ``folder``; yield its udp URL; stop it with ``stop`` and
    check that it exits cleanly."""
    return net_relay_node("run", app, "--config", str(config), cwd=folder, stop=stop)


async def run_to_the_end(app: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return await run_net_relay("run", app, "--config", str(write_config(folder)), cwd=folder)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_the_example_s_actors_answer_and_the_node_stops_cleanly_on_a_signal(
        tmp_path: Path, stop: signal.Signals) -> None:
    folder = tmp_path / "project"
    shutil.copytree(EXAMPLE, folder)
    async with running("app:setup", folder, write_config(tmp_path), stop) as url, \
            Node(udp_config("caller")) as caller:
        assert await caller.ref(f"{url}/greeter").rpc({"name": "ada"}, timeout=5.0) == {
            "hello": "ada"}
        for index in range(3):
            await caller.ref(f"{url}/tally").send(index)
        counted: object = 0
        async with asyncio.timeout(WAIT_LIMIT):
            while counted != 3:
                counted = await caller.ref(f"{url}/tally").rpc(None, timeout=5.0)


async def test_a_plain_function_sets_the_node_up_as_well(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text(
        "from relay_core import Rpc\n\n"
        "async def answer(ctx):\n"
        "    async for message in ctx:\n"
        "        if isinstance(message, Rpc):\n"
        "            message.respond(['answered', message.request])\n\n"
        "def install(node):\n"
        "    node.spawn(answer, name='answer')\n")
    async with running("plain:install", tmp_path, write_config(tmp_path)) as url, \
            Node(udp_config("caller")) as caller:
        assert await caller.ref(f"{url}/answer").rpc(7, timeout=5.0) == ["answered", 7]


async def test_a_node_run_without_the_demo_actors_has_none_of_them(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("def nothing(node):\n    pass\n")
    async with running("empty:nothing", tmp_path, write_config(tmp_path)) as url, \
            Node(udp_config("caller")) as caller:
        with pytest.raises(UnknownActor):
            await caller.ref(f"{url}/echo").rpc(1, timeout=5.0)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("net-relay run: ")
    for fragment in fragments:
        assert fragment in lines[0]


async def test_a_module_that_is_not_there_is_one_line_and_status_2(tmp_path: Path) -> None:
    result = await run_to_the_end("no_such_module:setup", tmp_path)
    assert_one_line_error(result, "cannot import module 'no_such_module'", "ModuleNotFoundError")


async def test_a_module_that_fails_to_import_says_why(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('the database is not configured')\n")
    result = await run_to_the_end("broken:setup", tmp_path)
    assert_one_line_error(result, "cannot import module 'broken'",
                          "RuntimeError: the database is not configured")


async def test_a_missing_function_is_one_line_and_status_2(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def setup(node):\n    pass\n")
    result = await run_to_the_end("app:start", tmp_path)
    assert_one_line_error(result, "module 'app' has no attribute 'start'")


async def test_something_that_cannot_be_called_is_one_line_and_status_2(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("setup = 42\n")
    result = await run_to_the_end("app:setup", tmp_path)
    assert_one_line_error(result, "app:setup is not a function taking the node: it is of type int")


@pytest.mark.parametrize("definition", ["def", "async def"])
async def test_a_function_that_raises_stops_the_node_and_prints_its_error(
        tmp_path: Path, definition: str) -> None:
    (tmp_path / "app.py").write_text(
        f"{definition} setup(node):\n    raise ValueError('no actors today')\n")
    result = await run_to_the_end("app:setup", tmp_path)
    assert_one_line_error(result, "app:setup raised ValueError: no actors today")


@pytest.mark.parametrize("spec", ["app", "app:", ":setup", "app:setup:more"])
async def test_an_argument_that_is_not_module_colon_function_is_a_usage_error(
        tmp_path: Path, spec: str) -> None:
    result = await run_to_the_end(spec, tmp_path)
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert "MODULE:FUNCTION" in result.stderr
