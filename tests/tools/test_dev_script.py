"""dev.py, the contributor's entry point: it shows each set-up step and its time instead of
pip's output, and it takes the processes it starts down with it when it is stopped.

The child processes here stand in for ``net-relay node`` and pip: dev.py's helpers are
exercised exactly as ``python3 dev.py demo`` uses them, without building an environment.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from nodes import WAIT_LIMIT, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent


def load_dev() -> ModuleType:
    sys.path.insert(0, str(ROOT))  # dev.py imports setup.py beside it
    try:
        spec = importlib.util.spec_from_file_location("dev_under_test", ROOT / "dev.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT))
    return module


CHILD = ("import os, signal, sys, time\n"
         "if 'ignore-term' in sys.argv: signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "print(os.getpid(), flush=True)\n"
         "time.sleep(120)\n")
DEV_RUNS_A_CHILD = ("import sys\n"
                    "sys.path.insert(0, sys.argv[1])\n"
                    "import dev\n"
                    "child = [sys.executable, '-c', sys.argv[2], *sys.argv[4:]]\n"
                    "sys.exit(dev.run_child(child, grace=float(sys.argv[3])))\n")


def is_gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie waiting for its parent counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


async def start_dev_with_child(*child_args: str, grace: float = WAIT_LIMIT
                               ) -> tuple[asyncio.subprocess.Process, int]:
    dev = await asyncio.create_subprocess_exec(
        sys.executable, "-c", DEV_RUNS_A_CHILD, str(ROOT), CHILD, str(grace), *child_args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert dev.stdout is not None
    try:
        async with asyncio.timeout(WAIT_LIMIT):
            child = int(await dev.stdout.readline())
    except BaseException:
        dev.kill()
        await dev.communicate()
        raise
    return dev, child


async def end_of(dev: asyncio.subprocess.Process) -> int:
    async with asyncio.timeout(WAIT_LIMIT):
        await dev.communicate()
    assert dev.returncode is not None
    return dev.returncode


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_stopping_dev_py_stops_the_child_it_started(stop: signal.Signals) -> None:
    dev, child = await start_dev_with_child()
    assert not is_gone(child)
    dev.send_signal(stop)  # to dev.py alone, as `kill` or a process manager would
    assert await end_of(dev) == 128 + stop
    await wait_for(lambda: is_gone(child), "the child to end")


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    dev, child = await start_dev_with_child("ignore-term", grace=0.5)
    dev.send_signal(signal.SIGTERM)
    assert await end_of(dev) == 128 + signal.SIGKILL
    await wait_for(lambda: is_gone(child), "the child to end")


def test_a_child_s_own_exit_status_is_dev_py_s() -> None:
    dev = load_dev()
    assert dev.run_child([sys.executable, "-c", "raise SystemExit(3)"]) == 3


def test_a_step_shows_its_name_and_time_and_keeps_the_tool_s_output_in_a_log(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = load_dev()
    log = tmp_path / "pip.log"
    noisy = "for n in range(200): print('Collecting noise', n)"
    dev.run_step("installing the test tools", [sys.executable, "-c", noisy], log)
    shown = capsys.readouterr().out
    assert "installing the test tools" in shown
    assert "done in" in shown
    assert "noise" not in shown
    assert "Collecting noise 199" in log.read_text()


def test_a_failed_step_shows_the_end_of_its_log_and_where_the_rest_is(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dev = load_dev()
    log = tmp_path / "pip.log"
    failing = "print('ERROR: no matching distribution for nothing-at-all'); raise SystemExit(1)"
    with pytest.raises(dev.StepFailed) as failed:
        dev.run_step("installing", [sys.executable, "-c", failing], log)
    message = str(failed.value)
    assert "installing failed (exit status 1)" in message
    assert "no matching distribution for nothing-at-all" in message
    assert str(log) in message
    assert capsys.readouterr().out.count("installing") >= 1


def test_dev_py_says_how_it_is_used_without_building_anything() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "dev.py")], capture_output=True, text=True,
                          timeout=WAIT_LIMIT, check=False, env={**os.environ})
    assert done.returncode == 2
    assert "python3 dev.py demo" in done.stderr
