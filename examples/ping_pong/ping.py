"""The ping side: sends N pings to beta/pong and prints each round trip."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from relay_core import Node, NodeConfig, RelayError

HERE = Path(__file__).parent


async def main(config_path: Path, count: int) -> int:
    async with Node(NodeConfig.from_file(config_path)) as node:
        pong = node.ref("beta/pong")
        for number in range(1, count + 1):
            started = time.perf_counter()
            try:
                reply = await pong.rpc({"ping": number}, timeout=1.0, expect=dict)
            except RelayError as exc:
                print(f"ping {number}: {type(exc).__name__}: {exc}")
                return 1
            took = (time.perf_counter() - started) * 1e6
            print(f"ping {number}: pong {reply['pong']} in {took:.0f} us")
    return 0


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    config = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE / "alpha.toml"
    sys.exit(asyncio.run(main(config, count)))
