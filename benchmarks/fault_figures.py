"""What two nodes deliver through the fault adapter: a table of figures for one seeded run.

Run ``python benchmarks/fault_figures.py [--messages N] [--rpcs N] [--drop P] ...``
(``--help`` lists every knob). Node alpha sends numbered, checksummed messages
to node beta over UDP loopback, with the faults set on both of alpha's paths
(``[peers.beta.fault]`` outbound, ``[listen.udp.fault]`` inbound, seeded
``seed`` and ``seed + 1``), then makes RPCs to beta's echo actor through the
same faults. The table counts what arrived, what the relay suppressed or
rejected, and what was lost. "delivered twice" and "delivered damaged" must be
0 whatever the rates. The run is bounded: counts are capped, and the whole run
gives up after ``--limit`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import random
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from relay_core import (
    ActorContext,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
    RelayError,
    RpcTimeout,
)
from relay_core.tools.demo import echo

MAX_MESSAGES = 100_000
MAX_RPCS = 10_000
RPC_BATCH = 50  # RPCs in flight at once
WAIT_LIMIT = 30.0  # seconds to wait for the last packets to land


def _checksum(number: int, body: bytes) -> int:
    return zlib.crc32(number.to_bytes(8, "big") + body)


def _intact(message: object) -> bool:
    if not isinstance(message, dict):
        return False
    number, body = message.get("n"), message.get("body")
    if not isinstance(number, int) or not isinstance(body, bytes):
        return False
    return message.get("crc") == _checksum(number, body)


@dataclass
class Sink:
    """Beta's receiving actor: deliveries per message number, and damaged messages."""

    deliveries: collections.Counter[int] = field(default_factory=collections.Counter)
    damaged: int = 0

    async def run(self, ctx: ActorContext) -> None:
        async for message in ctx:
            if _intact(message):
                self.deliveries[message["n"]] += 1  # type: ignore[index]
            else:
                self.damaged += 1

    @property
    def handled(self) -> int:
        return self.deliveries.total() + self.damaged


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_LIMIT):
        while not condition():
            await asyncio.sleep(0.005)


def _alpha_config(beta_url: str, fault: dict[str, object], seed: int) -> NodeConfig:
    fault = {**fault, "seed": seed}
    inbound = {**fault, "seed": seed + 1}
    listen = ListenConfig("127.0.0.1", 0, options={"fault": inbound})
    peer = PeerConfig(address=beta_url, options={"fault": fault})
    return NodeConfig(name="alpha", listen={"udp": listen}, peers={"beta": peer})


async def _send(alpha: Node, count: int, seed: int) -> None:
    """One message per event-loop turn, so that each travels in a packet of its own."""
    bodies = random.Random(seed)
    ref = alpha.ref("beta/sink")
    for number in range(count):
        body = bodies.randbytes(bodies.randrange(8, 200))
        await ref.send({"n": number, "body": body, "crc": _checksum(number, body)})
        await asyncio.sleep(0)


async def _settle(alpha: Node, beta: Node, sink: Sink) -> None:
    """Wait until beta has taken every datagram alpha's adapter let out."""
    await _until(lambda: alpha.stats().faults["udp"]["in_flight"] == 0)
    faults = alpha.stats().faults["udp"]
    sent = alpha.stats().peers["beta"]["packets_sent"]
    datagrams = sent - faults["dropped"] - faults["overflow"] + faults["duplicated"]
    await _until(lambda: beta.stats().total["packets_received"] >= datagrams)
    await _until(lambda: sink.handled == beta.stats().total["messages_received"])


async def _rpcs(alpha: Node, count: int, timeout: float, retries: int) -> collections.Counter[str]:
    outcomes: collections.Counter[str] = collections.Counter()
    ref = alpha.ref("beta/echo")
    for start in range(0, count, RPC_BATCH):
        calls = [ref.rpc(n, timeout=timeout, retries=retries)
                 for n in range(start, min(start + RPC_BATCH, count))]
        for result in await asyncio.gather(*calls, return_exceptions=True):
            kind = "timeout" if isinstance(result, RpcTimeout) else "other"
            outcomes["ok" if not isinstance(result, BaseException) else kind] += 1
    return outcomes


async def run(args: argparse.Namespace) -> list[tuple[str, object]]:
    fault = {name: getattr(args, name) for name in
             ("drop", "duplicate", "reorder", "delay", "jitter", "corrupt")}
    sink = Sink()
    started = time.perf_counter()
    beta_config = NodeConfig(name="beta", mailbox_size=args.messages + 1,
                             listen={"udp": ListenConfig("127.0.0.1", 0)})
    async with Node(beta_config) as beta:
        beta.spawn(sink.run, name="sink")
        beta.spawn(echo, name="echo")
        async with Node(_alpha_config(beta.address("udp"), fault, args.seed)) as alpha:
            await _send(alpha, args.messages, args.seed)
            await _settle(alpha, beta, sink)
            rpcs = await _rpcs(alpha, args.rpcs, args.timeout, args.retries)
            faults, received = alpha.stats().faults["udp"], beta.stats().total
    elapsed = time.perf_counter() - started
    delivered = len(sink.deliveries)
    return [
        ("messages sent", args.messages),
        ("delivered", delivered),
        ("delivered twice (must be 0)", sum(1 for n in sink.deliveries.values() if n > 1)),
        ("delivered damaged (must be 0)", sink.damaged),
        ("lost", args.messages - delivered),
        ("damaged packets rejected (corrupt / malformed)",
         f"{received['corrupt']} / {received['malformed']}"),
        ("duplicate packets suppressed", received["duplicates"] + received["too_old"]),
        ("adapter: dropped / duplicated / reordered",
         f"{faults['dropped']} / {faults['duplicated']} / {faults['reordered']}"),
        ("adapter: corrupted / delayed / overflow",
         f"{faults['corrupted']} / {faults['delayed']} / {faults['overflow']}"),
        ("adapter: peak packets in flight", faults["peak_in_flight"]),
        (f"RPCs ok / timeouts / other (retries={args.retries})",
         f"{rpcs['ok']} / {rpcs['timeout']} / {rpcs['other']}"),
        ("elapsed", f"{elapsed:.2f} s"),
    ]


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a probability from 0 to 1")
    return value


def _bounded(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not 0 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{text} is not a count from 0 to {limit}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=_bounded(MAX_MESSAGES), default=3000)
    parser.add_argument("--rpcs", type=_bounded(MAX_RPCS), default=200)
    for name, default in (("drop", 0.05), ("duplicate", 0.3), ("reorder", 0.1),
                          ("corrupt", 0.05)):
        parser.add_argument(f"--{name}", type=_probability, default=default,
                            help=f"probability (default {default})")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added to each packet")
    parser.add_argument("--jitter", type=float, default=0.0, help="+- seconds around --delay")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per RPC, in all")
    parser.add_argument("--retries", type=_bounded(10), default=3)
    parser.add_argument("--limit", type=float, default=300.0, help="give up after this long")
    return parser


def main() -> int:
    args = _parser().parse_args()
    logging.getLogger("relay_core").setLevel(logging.ERROR)  # every rejection is expected here

    async def bounded() -> list[tuple[str, object]]:
        async with asyncio.timeout(args.limit):
            return await run(args)

    try:
        rows = asyncio.run(bounded())
    except (RelayError, TimeoutError) as exc:
        print(f"fault_figures: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    rates = ", ".join(f"{name}={getattr(args, name)}" for name in
                      ("drop", "duplicate", "reorder", "corrupt", "delay", "jitter", "seed"))
    print(f"fault figures ({rates})")
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value:>14}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
