"""The loss ledger over stream transports: messages sent against delivered plus counted.

Run ``python benchmarks/stream_ledger.py [--messages N] [--size BYTES] [--mailbox N]
[--transports tcp,quic]``. For each transport, a receiving node and a sending node
run in one process on 127.0.0.1. The sender awaits ``send`` for every message to
a fresh peer (its connection not yet made), then leaves ``async with Node(...)``
at once; the receiver's actor takes its messages as they come (``--mailbox``
sets its mailbox: a small one makes a tcp connection stop being read and a
quic one drop and count). The line per transport holds: sent, delivered,
counted (every loss counter of both nodes, by name), and unaccounted, which the
ledger promises is 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from relay_core import ActorContext, ListenConfig, Node, NodeConfig, PeerConfig
from relay_transports._certs import generate_self_signed

LOSSES = ("mailbox_full", "link_full", "closed_unsent", "connection_lost")
SETTLE = 30.0  # seconds the receiver gets after the sender left, at most


async def run(scheme: str, messages: int, size: int, mailbox: int, directory: Path) -> str:
    listen: dict[str, object] = {}
    peer: dict[str, object] = {}
    if scheme == "quic":
        cert, key = directory / "cert.pem", directory / "key.pem"
        generate_self_signed(cert, key, ["127.0.0.1"])
        listen = {"certificate": str(cert), "private_key": str(key)}
        peer = {"ca": str(cert)}
    received = 0

    async def sink(ctx: ActorContext) -> None:
        nonlocal received
        async for _ in ctx:
            received += 1

    server_config = NodeConfig(name="receiver",
                               listen={scheme: ListenConfig("127.0.0.1", 0, listen)})
    async with Node(server_config) as server:
        server.spawn(sink, name="sink", mailbox_size=mailbox)
        client_config = NodeConfig(name="sender", peers={
            "receiver": PeerConfig(address=server.address(scheme), options=peer)})
        started = time.perf_counter()
        async with Node(client_config) as client:
            ref = client.ref("receiver/sink")
            payload = b"x" * size
            for number in range(messages):
                await ref.send([number, payload])
        left = time.perf_counter() - started
        sent = client.stats().total["messages_sent"]
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            counted = _losses(client) | _losses(server)
            if received + sum(counted.values()) >= sent:
                break
            await asyncio.sleep(0.05)
        counted = _losses(client) | _losses(server)
    return (f"{scheme}: sent {sent}, delivered {received}, counted "
            f"{sum(counted.values())} {counted}, unaccounted "
            f"{sent - received - sum(counted.values())} (sender left after {left:.2f} s)")


def _losses(node: Node) -> dict[str, int]:
    total = node.stats().total
    return {f"{node.name}.{name}": total[name] for name in LOSSES if total[name]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--mailbox", type=int, default=1024)
    parser.add_argument("--transports", default="tcp,quic")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        for scheme in args.transports.split(","):
            print(asyncio.run(run(scheme, args.messages, args.size, args.mailbox,
                                  Path(directory))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
