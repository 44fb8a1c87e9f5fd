"""Running one row once: two worker processes, their results, and a bounded wait.

Rules kept here:

- Workers run as ``python -m relay_core.tools.bench._workers`` (under ``taskset -c
  0`` when pinned), each in its own session, so Ctrl-C reaches only the bench,
  which then kills them. Every way out of a run kills whatever still runs.
- A run is bounded by its time limit; an overrun is the failure ``timeout``.
- A worker's stderr goes to a file, so a chatty worker can never block on a
  full pipe; its last line explains a worker that died without a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._cases import Case
from ._scenarios import SCENARIOS, Result, RunFailed

__all__ = ["WORKERS", "Measurement", "Runner"]

WORKERS = "relay_core.tools.bench._workers"


@dataclass(frozen=True, slots=True)
class Measurement:
    """What one run of one row measured, or why it measured nothing."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    failure: str = ""
    """Empty, ``timeout``, or ``failed: REASON``."""


class _Child:
    """One worker process: JSON lines out, a stop line in, stderr kept in a file."""

    def __init__(self, process: asyncio.subprocess.Process, role: str, stderr: Path) -> None:
        self.process, self.role, self.stderr = process, role, stderr

    async def result(self) -> Result:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            await self.process.wait()
            raise RunFailed(f"{self.role} exited ({self.process.returncode}) without a "
                            f"result{self._last_words()}")
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise RunFailed(f"{self.role} printed {line[:80]!r}, not a JSON result") from None
        if "error" in value:
            raise RunFailed(f"{self.role}: {value['error']}")
        return value  # type: ignore[no-any-return]

    async def stop(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.process.stdin.write(b"stop\n")
            await self.process.stdin.drain()

    async def end(self, grace: float) -> None:
        """Kill the worker unless it exits by itself within ``grace`` seconds."""
        if self.process.returncode is None and grace > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), grace)
        if self.process.returncode is None:
            self.process.kill()
        if self.process.stdin is not None:
            self.process.stdin.close()
        await self.process.wait()

    def _last_words(self) -> str:
        lines = self.stderr.read_text(errors="replace").strip().splitlines()
        return f": {lines[-1]}" if lines else ""


_Start = Callable[[Sequence[str]], Awaitable[_Child]]
"""Start one worker with these arguments; it is killed when the run ends."""


@dataclass(slots=True)
class Runner:
    """Runs rows: one pair of workers per run, bounded by ``time_limit`` seconds."""

    workdir: Path
    """Where workers' stderr files go."""
    prefix: tuple[str, ...]
    """Put before the worker command, e.g. ``taskset -c 0``."""
    time_limit: float
    started: int = 0
    role_prefixes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Put before one role's worker command, after ``prefix`` (benchmarks/instructions.py
    runs one side under valgrind)."""
    exit_grace: float = 0.0
    """Seconds a worker gets to exit by itself once the run is over, before it is
    killed (valgrind writes its count as the worker exits)."""

    async def measure(self, case: Case) -> Measurement:
        try:
            server, client = await self.run_pair(case.server, case.client)
            return Measurement(SCENARIOS[case.scenario].combine(server, client))
        except TimeoutError:
            return Measurement(failure="timeout")
        except RunFailed as exc:
            return Measurement(failure=f"failed: {exc}")
        except (KeyError, TypeError, ZeroDivisionError) as exc:
            return Measurement(failure=f"failed: unexpected worker result: {exc!r}")

    async def run_pair(self, server: Sequence[str], client: Sequence[str]) -> tuple[Result, Result]:
        """Run a server and a client worker once; return both results.

        Raise ``TimeoutError`` past the time limit and ``RunFailed`` for a worker
        that failed; either way, both workers are ended.
        """
        async with self._children() as start:
            async with asyncio.timeout(self.time_limit):
                return await _exchange(server, client, start)

    def stderr_of(self, role: str) -> Path:
        """The stderr file of the latest ``role`` worker this runner started."""
        return max(self.workdir.glob(f"*-{role}.stderr"))

    @contextlib.asynccontextmanager
    async def _children(self) -> AsyncIterator[_Start]:
        children: list[_Child] = []

        async def start(arguments: Sequence[str]) -> _Child:
            children.append(await self._start(arguments))
            return children[-1]

        try:
            yield start
        finally:
            await asyncio.shield(asyncio.gather(*(child.end(self.exit_grace)
                                                  for child in children)))

    async def _start(self, arguments: Sequence[str]) -> _Child:
        self.started += 1
        stderr = self.workdir / f"{self.started:04d}-{arguments[0]}.stderr"
        with stderr.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                *self.prefix, *self.role_prefixes.get(arguments[0], ()), sys.executable, "-m",
                WORKERS, *arguments,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=sink,
                start_new_session=True)
        return _Child(process, arguments[0], stderr)


async def _exchange(server_arguments: Sequence[str], client_arguments: Sequence[str],
                    start: _Start) -> tuple[Result, Result]:
    """Start the server, then the client at the server's address; return both results."""
    server = await start(server_arguments)
    ready = await server.result()
    client = await start((*client_arguments, "--target", str(ready["ready"])))
    client_result = await client.result()
    await server.stop()
    return await server.result(), client_result
