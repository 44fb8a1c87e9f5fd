"""The command line never prints a traceback: bad arguments and a closed stdout included."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from nodes import WAIT_LIMIT, udp_config
from relay_core import Node
from relay_core.tools.cli import EXIT_BROKEN_PIPE, main

CLI = [sys.executable, "-m", "relay_core.tools.cli"]


@pytest.mark.parametrize("command", ["rpc", "stats"])
@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(
        command: str, timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["udp://127.0.0.1:9/echo", "{}"] if command == "rpc" else ["udp://127.0.0.1:9"]
    with pytest.raises(SystemExit) as exited:
        main([command, *arguments, "--timeout", timeout])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert (f"argument --timeout: --timeout must be a number of seconds greater than 0, "
            f"not {timeout!r}") in error


async def run_with_stdout_closed(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the CLI with its stdout a pipe whose reading end is already closed, as when
    ``net-relay ... | head`` has read what it wanted and gone."""
    reading, writing = os.pipe()
    os.close(reading)
    try:
        process = await asyncio.create_subprocess_exec(*CLI, *args, stdout=writing,
                                                       stderr=subprocess.PIPE)
    finally:
        os.close(writing)
    async with asyncio.timeout(WAIT_LIMIT):
        _, stderr = await process.communicate()
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, b"", stderr)


async def test_plugins_into_a_closed_pipe_ends_quietly_as_a_unix_tool_does() -> None:
    result = await run_with_stdout_closed("plugins")
    assert result.stderr.decode() == ""
    assert result.returncode == EXIT_BROKEN_PIPE == 141


async def test_stats_into_a_closed_pipe_ends_quietly_as_a_unix_tool_does() -> None:
    async with Node(udp_config("beta")) as beta:
        result = await run_with_stdout_closed("stats", beta.address("udp"))
    assert result.stderr.decode() == ""
    assert result.returncode == EXIT_BROKEN_PIPE


@pytest.mark.parametrize("package", ["relay_core", "net_relay"])
def test_python_dash_m_runs_the_command_line(package: str) -> None:
    done = subprocess.run([sys.executable, "-m", package, "--version"], capture_output=True,
                          text=True, timeout=WAIT_LIMIT * 6, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("net-relay ")
    usage = subprocess.run([sys.executable, "-m", package], capture_output=True, text=True,
                           timeout=WAIT_LIMIT * 6, check=False)
    assert usage.returncode == 2
    assert "usage: net-relay" in usage.stderr
