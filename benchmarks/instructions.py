"""CPU instructions per RPC or per one-way message, counted by valgrind (callgrind).

Run ``python benchmarks/instructions.py [--scenario rpc|oneway] [--transport udp|tcp]
[--short N] [--long N] [--loop auto|asyncio|uvloop] [--side receiver|sender [--roles
relay|pyzmq]]``. It needs valgrind on PATH.

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

``--side receiver`` or ``--side sender`` (oneway only) counts one process of the
bench's own two-process one-way test instead: the receiving or the sending
worker runs under callgrind, the other at full speed. ``--roles pyzmq`` counts
the bench's pyzmq PULL or PUSH worker the same way, for comparison. The receiver
is counted over tcp only: over udp, a receiver slowed by valgrind loses datagrams.
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
import tempfile
import time
from pathlib import Path

WARM_UP = 100
CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")
ROLES = {"relay": ("relay-sink", "relay-source"), "pyzmq": ("zmq-pull", "zmq-push")}
"""The bench's (receiving, sending) one-way workers for ``--side``."""
SIDE_LIMIT = 600.0
"""Seconds the --side test may take, one worker under valgrind, before it is given up."""
_COLLECTED = re.compile(r"Collected : (\d+)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("rpc", "oneway"), default="rpc")
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--short", type=int, metavar="N",
                        help="round trips (or messages) of the shorter run (1000; 10000 with "
                             "--side)")
    parser.add_argument("--long", type=int, metavar="N",
                        help="round trips (or messages) of the longer run (3000; 30000 with "
                             "--side)")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                        help="event loop, as NET_RELAY_LOOP (auto: uvloop where installed)")
    parser.add_argument("--side", choices=("receiver", "sender"),
                        help="oneway: count only this process of the bench's two-process test")
    parser.add_argument("--roles", choices=tuple(ROLES), default="relay",
                        help="with --side: whose workers (relay, or pyzmq PUSH/PULL over tcp)")
    parser.add_argument("--probe", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe is not None:
        _probe(args.scenario, args.transport, args.probe)
        return 0
    # Two processes meet the loop in a pattern that varies from run to run: longer
    # runs make that a smaller share of the difference.
    scale = 1 if args.side is None else 10
    args.short = 1000 * scale if args.short is None else args.short
    args.long = 3000 * scale if args.long is None else args.long
    if not 0 < args.short < args.long:
        parser.error(f"--short {args.short} and --long {args.long}: need 0 < short < long")
    if args.side is not None and args.scenario != "oneway":
        parser.error("--side counts a one-way test: add --scenario oneway")
    if args.side == "receiver" and args.roles == "relay" and args.transport == "udp":
        parser.error("--side receiver over udp would lose the datagrams valgrind keeps it "
                     "from reading: use --transport tcp")
    if args.roles != "relay" and args.side is None:
        parser.error(f"--roles {args.roles} needs --side receiver or --side sender")
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
    side = "" if args.side is None else f", {args.roles} {args.side} only"
    transport = "tcp (pyzmq)" if args.roles == "pyzmq" else args.transport
    print(f"{args.scenario} over {transport}, loop {args.loop}{side}: "
          f"{each:,.0f} instructions per {_unit(args.scenario)[:-1]}")
    return 0


def _unit(scenario: str) -> str:
    return "round trips" if scenario == "rpc" else "messages"


def _count(args: argparse.Namespace, count: int) -> int:
    environment = {**os.environ, "PYTHONHASHSEED": "0", "NET_RELAY_LOOP": args.loop}
    if args.side is not None:
        return _count_side(args, count, environment)
    command = [*CALLGRIND, sys.executable, __file__, "--scenario", args.scenario,
               "--transport", args.transport, "--probe", str(count)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    return _collected(done.returncode, done.stderr)


def _count_side(args: argparse.Namespace, count: int, environment: dict[str, str]) -> int:
    """Run the bench's receiving and sending workers once, as the bench does, the
    counted one under callgrind; its count is in its stderr."""
    from relay_core.tools.bench._runner import Runner
    from relay_core.tools.bench._scenarios import RunFailed

    receiver_role, sender_role = ROLES[args.roles]
    counted = receiver_role if args.side == "receiver" else sender_role
    options = ["--transport", args.transport] if args.roles == "relay" else []
    os.environ.update(environment)  # the workers inherit it
    with tempfile.TemporaryDirectory(prefix="net-relay-instructions-") as workdir:
        runner = Runner(Path(workdir), (), SIDE_LIMIT, role_prefixes={counted: CALLGRIND},
                        exit_grace=SIDE_LIMIT)
        try:
            asyncio.run(runner.run_pair([receiver_role, *options],
                                        [sender_role, *options, "--messages", str(count)]))
        except TimeoutError:
            sys.exit(f"the {counted} worker took over {SIDE_LIMIT:.0f} s under valgrind")
        except RunFailed as exc:
            sys.exit(f"the one-way test failed: {exc}")
        return _collected(0, runner.stderr_of(counted).read_text(errors="replace"))


def _collected(returncode: int, stderr: str) -> int:
    found = _COLLECTED.search(stderr)
    if returncode != 0 or found is None:
        sys.exit(f"the probe failed under valgrind (exit {returncode}):\n{stderr[-2000:]}")
    return int(found.group(1))


def _probe(scenario: str, transport: str, count: int) -> None:
    # Fixed before relay_core draws its incarnation: see the module's docstring.
    # Seeded, yet distinct per draw: two nodes with one incarnation would take each
    # other's packets for their own, reflected back at them.
    draws = random.Random(0x9A)
    os.urandom = draws.randbytes
    random.seed(1)
    import relay_core

    relay_core.run(_rpcs(transport, count) if scenario == "rpc" else _messages(transport, count))


async def _rpcs(transport: str, count: int) -> None:
    from relay_core import ListenConfig, Node, NodeConfig
    from relay_core.tools.demo import echo

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
    from relay_core.tools.bench._workers._common import sample

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
