"""CPU instructions per RPC or per one-way message, counted by valgrind (callgrind).

Run ``python benchmarks/instructions.py [--scenario rpc|oneway] [--transport udp|tcp]
[--short N] [--long N] [--loop auto|asyncio|uvloop]``. It needs valgrind on PATH.

Timings on a shared VM drift by tens of percent from run to run; instruction counts
do not, so this is how a change to the hot path is judged. Both nodes run in one
process (no second CPU, no scheduler in the figure): the probe runs ``--short``
and then ``--long`` round trips (or messages) under callgrind, and the difference
of the two totals divided by the difference of the counts is the cost of one,
with start-up, warm-up and shutdown cancelled out. The probe fixes the node
incarnation and the request-id seed: a random 64-bit incarnation decides whether
integers fit a machine word in the compiled build, which moved counts by about
1.5k from run to run. Repeated runs agree within a few instructions.

The rpc scenario is one small request at a time to the demo's echo actor; the
oneway scenario sends the bench's 82-byte message to a counting actor, yielding
to the loop every 100 messages, as a sender that awaits ``send`` does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import time

WARM_UP = 100
_COLLECTED = re.compile(r"Collected : (\d+)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("rpc", "oneway"), default="rpc")
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--short", type=int, default=1000, metavar="N",
                        help="round trips (or messages) of the shorter run (1000)")
    parser.add_argument("--long", type=int, default=3000, metavar="N",
                        help="round trips (or messages) of the longer run (3000)")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="event loop, as NET_RELAY_LOOP (auto: uvloop where installed)")
    parser.add_argument("--probe", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe is not None:
        _probe(args.scenario, args.transport, args.probe)
        return 0
    if not 0 < args.short < args.long:
        parser.error(f"--short {args.short} and --long {args.long}: need 0 < short < long")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not on PATH; install it (Debian: apt install valgrind)")
    totals = []
    for count in (args.short, args.long):
        print(f"counting {count} {_unit(args.scenario)} under callgrind ...", file=sys.stderr,
              flush=True)
        started = time.monotonic()
        totals.append(_count(args, count))
        print(f"  {totals[-1]:,} instructions in {time.monotonic() - started:.0f} s",
              file=sys.stderr, flush=True)
    each = (totals[1] - totals[0]) / (args.long - args.short)
    print(f"{args.scenario} over {args.transport}, loop {args.loop}: "
          f"{each:,.0f} instructions per {_unit(args.scenario)[:-1]}")
    return 0


def _unit(scenario: str) -> str:
    return "round trips" if scenario == "rpc" else "messages"


def _count(args: argparse.Namespace, count: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
               __file__, "--scenario", args.scenario, "--transport", args.transport,
               "--probe", str(count)]
    environment = {**os.environ, "PYTHONHASHSEED": "0", "NET_RELAY_LOOP": args.loop}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"the probe failed under valgrind (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def _probe(scenario: str, transport: str, count: int) -> None:
    # Fixed before relay_core draws its incarnation: see the module's docstring.
    os.urandom = lambda size: bytes([0x9A] * size)
    random.seed(1)
    import relay_core

    relay_core.run(_rpcs(transport, count) if scenario == "rpc" else _messages(transport, count))


async def _rpcs(transport: str, count: int) -> None:
    from relay_core import ListenConfig, Node, NodeConfig
    from relay_core._demo import echo

    async with Node(NodeConfig(name="server", listen={transport: ListenConfig("127.0.0.1", 0)})) \
            as server, \
            Node(NodeConfig(name="client", listen={transport: ListenConfig("127.0.0.1", 0)})) \
            as client:
        server.spawn(echo, name="echo")
        ref = client.ref(server.address(transport) + "/echo")
        message = {"n": 1, "text": "hello"}
        for _ in range(WARM_UP + count):
            await ref.rpc(message, timeout=5)


async def _messages(transport: str, count: int) -> None:
    from relay_core import ActorContext, ListenConfig, Node, NodeConfig
    from relay_core._bench._workers._common import sample

    total = WARM_UP + count
    all_arrived = asyncio.Event()

    async def counter(context: ActorContext) -> None:
        received = 0
        async for _ in context:
            received += 1
            if received == total:
                all_arrived.set()

    listen = {transport: ListenConfig("127.0.0.1", 0)}
    async with Node(NodeConfig(name="receiver", listen=listen, mailbox_size=10_000)) as receiver, \
            Node(NodeConfig(name="sender", listen=listen)) as sender:
        receiver.spawn(counter, name="counter")
        ref = sender.ref(receiver.address(transport) + "/counter")
        for index in range(total):
            await ref.send(sample(index))
            if index % 100 == 99:
                await asyncio.sleep(0)
        await asyncio.wait_for(all_arrived.wait(), 120)


if __name__ == "__main__":
    sys.exit(main())
