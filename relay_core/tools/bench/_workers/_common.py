"""What every bench worker shares: the sample message, limits, output, and stdin control."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import stat
import sys
from collections.abc import Awaitable, Callable

__all__ = [
    "LOOPBACK",
    "QUIET",
    "REPLY_TIMEOUT",
    "AsyncRole",
    "Control",
    "Result",
    "emit",
    "quantiles",
    "sample",
    "stdin_readable",
]

LOOPBACK = "127.0.0.1"
QUIET = 0.5
"""Seconds without data after which a sink takes the stream as ended (its done marker was lost)."""
REPLY_TIMEOUT = 2.0
"""Seconds a caller waits for one reply before counting the request as lost."""

Result = dict[str, object]


def sample(index: int) -> dict[str, object]:
    """The message every role sends: a small greeting, 82 bytes as msgpack."""
    return {"n": index, "name": "ada lovelace", "lang": "en", "src": "alpha",
            "tags": ["greeting", "demo", "bench"], "at": 1712345678.25}


def emit(line: Result) -> None:
    print(json.dumps(line), flush=True)


def quantiles(samples_ns: list[int]) -> Result:
    """p50 and p99 (nearest rank) of round trips, in microseconds."""
    ordered = sorted(samples_ns)
    if not ordered:
        return {"p50_us": None, "p99_us": None}

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return {"p50_us": rank(0.50), "p99_us": rank(0.99)}


class Control:
    """The orchestrator's side channel: any line on stdin asks a server to stop, and
    the end of stdin means the orchestrator is gone, so every role gives up."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.closed = asyncio.Event()

    async def watch(self) -> None:
        # The orchestrator's stdin pipe is a FIFO on asyncio's loop and a socket pair on uvloop's.
        mode = os.fstat(sys.stdin.fileno()).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return  # run by hand: no orchestrator to listen to (epoll refuses files)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        pipe, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while await reader.readline():
                self.stop.set()
        finally:
            pipe.close()
        self.stop.set()
        self.closed.set()


AsyncRole = Callable[[argparse.Namespace, Control], Awaitable[Result]]


def stdin_readable() -> bool:
    """True when stdin has a line or is closed (for the blocking zmq roles)."""
    readable, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(readable)
