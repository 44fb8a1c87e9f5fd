"""What sealing costs over udp on loopback: the first call to a fresh peer, and steady state.

Run ``python benchmarks/seal_cost.py [--rounds N]``. For plain and for sealed udp it
prints the median time from a fresh node's first ``rpc`` to its reply (a sealed
node learns its peer's incarnation first: one more round trip), then the
median round trip of sequential calls and the rate of one-way messages once
the link is up (in batches of 100, each followed by a call, so none is dropped). Medians over ``--rounds`` fresh client nodes, on one machine
and one event loop: compare the rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

from relay_core import ListenConfig, Node, NodeConfig, PeerConfig
from relay_core import run as run_on_chosen_loop
from relay_core.tools.demo import counter, echo

KEY = "3c" * 32
CALLS = 500
MESSAGES = 5_000
BATCH = 100
"""Messages sent before a call waits for them: fewer than a mailbox holds."""


def _server(sealed: bool) -> NodeConfig:
    options: dict[str, object] = {"keys": {"7": KEY}} if sealed else {}
    return NodeConfig(name="server", listen={"udp": ListenConfig("127.0.0.1", 0, options)})


def _client(address: str, sealed: bool) -> NodeConfig:
    options: dict[str, object] = {"keys": {"7": KEY}} if sealed else {}
    return NodeConfig(name="client", listen={"udp": ListenConfig("127.0.0.1", 0)},
                      peers={"server": PeerConfig(address=address, options=options)})


async def _one_client(server: Node, sealed: bool) -> tuple[float, float, float]:
    async with Node(_client(server.address("udp"), sealed)) as client:
        echoing, counting = client.ref("server/echo"), client.ref("server/counter")
        started = time.perf_counter()
        await echoing.rpc(0, timeout=10.0)
        first = time.perf_counter() - started
        started = time.perf_counter()
        for index in range(CALLS):
            await echoing.rpc(index, timeout=10.0)
        round_trip = (time.perf_counter() - started) / CALLS
        started = time.perf_counter()
        for batch in range(MESSAGES // BATCH):
            for index in range(BATCH):
                await counting.send(index)
            await counting.rpc(batch, timeout=10.0)  # answered once the batch was counted
        rate = MESSAGES / (time.perf_counter() - started)
    return first, round_trip, rate


async def measure(rounds: int) -> None:
    for sealed in (False, True):
        rows = []
        async with Node(_server(sealed)) as server:
            server.spawn(echo, name="echo")
            server.spawn(counter, name="counter")
            for _ in range(rounds):
                rows.append(await _one_client(server, sealed))
        first, round_trip, rate = (statistics.median(column) for column in zip(*rows, strict=True))
        print(f"{'sealed' if sealed else 'plain':>6} udp: first call {first * 1e3:.2f} ms, "
              f"round trip {round_trip * 1e6:.0f} us, one-way {rate:,.0f} messages/s "
              f"(median of {rounds})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="fresh client nodes (7)")
    run_on_chosen_loop(measure(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
