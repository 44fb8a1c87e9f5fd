"""A server node in its own process whose actor ``slow`` answers every RPC a second late.

Calls to it stay open long enough for an attacker to work on the caller. Run by
:class:`SlowPeer` as a script (``python _slow_peer.py``); it listens on tcp alone,
prints ``listening on tcp://HOST:PORT`` and serves until it is killed.
"""

from __future__ import annotations

import asyncio
import sys
from types import TracebackType
from typing import Self

from relay_core import ActorContext, ListenConfig, Node, NodeConfig, RelayError, Rpc

DELAY = 1.0
"""Seconds ``slow`` holds each request before it answers."""
_START_LIMIT = 30.0


def answer_to(request: object) -> dict[str, object]:
    """What ``slow`` answers to ``request``: a value nobody else sends."""
    return {"answered by": "slow peer", "request": request}


async def slow(ctx: ActorContext) -> None:
    """Answers each RPC with ``answer_to(request)`` after DELAY seconds, many at once."""
    loop = asyncio.get_running_loop()
    async for message in ctx:
        if isinstance(message, Rpc):
            loop.call_later(DELAY, _answer, message)


def _answer(rpc: Rpc) -> None:
    if not rpc.answered:
        rpc.respond(answer_to(rpc.request))


async def _serve() -> None:
    config = NodeConfig(name="slow-peer", listen={"tcp": ListenConfig("127.0.0.1", 0)})
    async with Node(config) as node:
        node.spawn(slow, name="slow", mailbox_size=100_000)
        print(f"listening on {node.address('tcp')}", flush=True)
        await asyncio.Event().wait()


class SlowPeer:
    """The slow peer's process: ``async with SlowPeer() as peer``; ``peer.address`` is
    its ``tcp://HOST:PORT``."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self.address = ""

    async def __aenter__(self) -> Self:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        assert self._process.stdout is not None
        async with asyncio.timeout(_START_LIMIT):
            line = (await self._process.stdout.readline()).decode()
        if not line.startswith("listening on "):
            await self.__aexit__(None, None, None)
            raise RelayError("the slow peer exited before it listened")
        self.address = line.rsplit(" ", 1)[1].strip()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


if __name__ == "__main__":
    from relay_core import run

    run(_serve())
