"""The loss ledger: every message a sender's ``send()`` accepted is delivered or counted.

Run ``python benchmarks/loss_ledger.py [--messages N] [--size BYTES] [--mailbox N]
[--scenarios udp,tcp,quic,fan-in]``.

Each scenario runs a receiving node in this process and its senders as
separate processes (this script again, ``--sender``), so they compete for the
CPU as real peers do:

- ``udp``, ``tcp``, ``quic``: one sender floods a slow actor (a small mailbox,
  a pause per message) as fast as ``await ref.send()`` lets it, then leaves
  its node at once (closing flushes what was accepted).
- ``fan-in``: eight udp senders flood one node's fast actor at once.

The table puts side by side what the senders' ``send()`` accepted, what the
actor got, and every loss a node counted, per reason and in messages, on
either end. ``in transit`` is what left a sender but never reached the
receiving node's decoder (its kernel's receive drops, in datagrams, show
beside it; a datagram may have carried several messages). ``unaccounted``
must be 0. Bounded: at most ``MAX_MESSAGES`` per scenario, and each scenario
gives up after ``--limit`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from relay_core import ActorContext, ListenConfig, Node, NodeConfig, PeerConfig, RelayError, Rpc
from relay_core import run as run_on_chosen_loop
from relay_core.tools.demo import loopback_options

MAX_MESSAGES = 1_000_000
MAX_SIZE = 1_000_000
SENDERS_FAN_IN = 8
QUIET_SECONDS = 1.0  # nothing more arrives for this long after the senders left: settled
SCENARIOS = ("udp", "tcp", "quic", "fan-in")

RECEIVER_LOSSES = ("mailbox_full", "unknown_actor", "oversize", "undecodable",
                   "unsupported_codec", "malformed", "corrupt", "unauthenticated",
                   "not_allowed", "duplicates", "too_old")
"""Counters of the receiving node that mean a message that arrived was not delivered."""
SENDER_LOSSES = ("link_full", "closed_unsent", "connection_lost", "peer_unreachable")
"""Counters of a sending node, in messages, of what ``send()`` accepted and the node
then could not send (it counted them in ``messages_sent`` first)."""

Options = Mapping[str, object]


class SlowSink:
    """Counts what it is given; with ``pause``, takes a little while over each message."""

    def __init__(self, pause: float) -> None:
        self.delivered = 0
        self.pause = pause

    async def run(self, ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                message.respond(self.delivered)
                continue
            self.delivered += 1
            if self.pause:
                await asyncio.sleep(self.pause)


# -- the sender process -----------------------------------------------------------------------


async def _send_all(url: str, options: Options, count: int, size: int) -> dict[str, object]:
    config = NodeConfig(name="sender", listen={},
                        peers={"sink": PeerConfig(address=url, options=options)})
    accepted = refused = 0
    reasons: dict[str, int] = {}
    started = time.perf_counter()
    padding = b"x" * size
    node = Node(config)
    async with node:
        ref = node.ref("sink/sink")
        for index in range(count):
            try:
                await ref.send([index, padding])
            except RelayError as exc:
                refused += 1
                reasons[type(exc).__name__] = reasons.get(type(exc).__name__, 0) + 1
            else:
                accepted += 1
    stats = node.stats()
    return {"accepted": accepted, "refused": refused, "refused_by": reasons,
            "seconds": time.perf_counter() - started,
            "total": stats.total}


def _sender_main(args: argparse.Namespace) -> int:
    options = json.loads(args.options)
    result = run_on_chosen_loop(_send_all(args.sender, options, args.messages, args.size))
    print(json.dumps(result))
    return 0


# -- the receiving side -----------------------------------------------------------------------


async def _start_sender(url: str, options: Options, count: int,
                        size: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sender", url, "--options", json.dumps(dict(options)),
        "--messages", str(count), "--size", str(size), stdout=asyncio.subprocess.PIPE)


async def _settle(node: Node, scheme: str) -> None:
    """Wait until nothing more reaches the node for QUIET_SECONDS."""
    def seen() -> tuple[int, int]:
        stats = node.stats()
        return stats.total["packets_received"], stats.receive_drops.get(scheme, 0)

    last, quiet_since = seen(), time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        await asyncio.sleep(0.05)
        now = seen()
        if now != last:
            last, quiet_since = now, time.monotonic()


async def scenario(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, object]:
    scheme = "udp" if name == "fan-in" else name
    senders = SENDERS_FAN_IN if name == "fan-in" else 1
    sink = SlowSink(pause=0.0 if name == "fan-in" else 0.0002)
    listen_options, peer_options = loopback_options(scheme, workdir)
    config = NodeConfig(name="receiver", listen={
        scheme: ListenConfig("127.0.0.1", 0, listen_options)})
    async with Node(config) as receiver:
        mailbox = args.mailbox or (64 if senders == 1 else 1024)
        receiver.spawn(sink.run, name="sink", mailbox_size=mailbox)
        url = receiver.address(scheme)
        processes = [await _start_sender(url, peer_options, args.messages // senders, args.size)
                     for _ in range(senders)]
        outputs = [await process.communicate() for process in processes]
        await _settle(receiver, scheme)
        received = receiver.stats()
    reports = [json.loads(stdout) for stdout, _ in outputs]
    return _ledger(name, reports, received.total, received.receive_drops.get(scheme, 0),
                   sink.delivered)


def _ledger(name: str, reports: list[dict[str, object]], received: Mapping[str, int],
            kernel_drops: int, delivered: int) -> dict[str, object]:
    def summed(key: str) -> int:
        return sum(int(report[key]) for report in reports)  # type: ignore[call-overload]

    def sender_counter(counter: str) -> int:
        return sum(int(report["total"][counter]) for report in reports)  # type: ignore[index]

    accepted = summed("accepted")
    counted = {f"sender {c}": sender_counter(c) for c in SENDER_LOSSES}
    counted |= {f"receiver {c}": received[c] for c in RECEIVER_LOSSES}
    left = sender_counter("messages_sent") - sum(sender_counter(c) for c in SENDER_LOSSES)
    in_transit = left - received["messages_received"]
    unaccounted = accepted - delivered - sum(counted.values()) - in_transit
    return {"scenario": name, "senders": len(reports), "accepted": accepted,
            "refused at send": summed("refused"), "delivered": delivered,
            "counted": {k: v for k, v in counted.items() if v},
            "sender send_errors (events)": sender_counter("send_errors"),
            "in transit": in_transit, "kernel receive drops (datagrams)": kernel_drops,
            "unaccounted": unaccounted,
            "send seconds": round(max(float(r["seconds"]) for r in reports), 2)}  # type: ignore[arg-type]


def _print(row: Mapping[str, object]) -> None:
    print(f"{row['scenario']}:")
    for label, value in row.items():
        if label != "scenario":
            print(f"  {label:<36} {value}")


async def run(args: argparse.Namespace) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="net-relay-ledger-") as workdir:
        for name in args.scenarios:
            print(f"... {name}: {args.messages} messages", file=sys.stderr, flush=True)
            async with asyncio.timeout(args.limit):
                row = await scenario(name, args, Path(workdir))
            _print(row)
            rows.append(row)
    return rows


def _scenarios(text: str) -> list[str]:
    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown) or '(none)'}; choose from {', '.join(SCENARIOS)}")
    return chosen


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {low} to {high}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=_count(SENDERS_FAN_IN, MAX_MESSAGES), default=100_000,
                        help="messages per scenario, shared among its senders (default 100000)")
    parser.add_argument("--size", type=_count(0, MAX_SIZE), default=40,
                        help="bytes of padding in each message (default 40)")
    parser.add_argument("--mailbox", type=_count(0, MAX_MESSAGES), default=0,
                        help="the receiving actor's mailbox (default 64, fan-in 1024)")
    parser.add_argument("--scenarios", type=_scenarios, default=list(SCENARIOS),
                        help=f"comma-separated, from {','.join(SCENARIOS)} (default: all)")
    parser.add_argument("--limit", type=float, default=300.0,
                        help="give up on a scenario after this many seconds (default 300)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    parser.add_argument("--sender", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    return parser


def main() -> int:
    args = _parser().parse_args()
    logging.getLogger("relay_core").setLevel(logging.ERROR)  # the losses are expected here
    logging.getLogger("relay_transports").setLevel(logging.ERROR)
    if args.sender:
        return _sender_main(args)
    try:
        rows = run_on_chosen_loop(run(args))
    except (RelayError, TimeoutError) as exc:
        print(f"loss_ledger: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows))
    return 0 if all(row["unaccounted"] == 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
