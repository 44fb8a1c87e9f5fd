"""The pong side: an actor that answers every ping. Stop it with Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from relay_core import ActorContext, Node, NodeConfig, Rpc

HERE = Path(__file__).parent


async def pong(ctx: ActorContext) -> None:
    async for message in ctx:
        if not isinstance(message, Rpc):
            continue
        if isinstance(message.request, dict) and "ping" in message.request:
            message.respond({"pong": message.request["ping"]})
        else:
            message.fail(ValueError(f"pong takes {{'ping': N}}, not {message.request!r}"))


async def main(config_path: Path) -> None:
    async with Node(NodeConfig.from_file(config_path)) as node:
        node.spawn(pong, name="pong")
        print(f"pong is waiting on {node.address('udp')}/pong", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "beta.toml"))
    except KeyboardInterrupt:
        pass
