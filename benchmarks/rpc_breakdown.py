"""Where one sequential RPC's time goes, net-relay over udp against a raw asyncio echo.

Run ``python benchmarks/rpc_breakdown.py [--rpcs N] [--runs N] [--warm-up N] [--pin]``. Each
run starts a server and a client process on 127.0.0.1. Both stamp
``time.perf_counter_ns()`` (CLOCK_MONOTONIC on Linux, one clock for every
process) at the same five points of every round trip, so the stamps of the two
processes can be subtracted:

- client send path: from calling ``rpc()`` to handing the request to ``sendto``;
- to the server: from there until the server has read the datagram (the
  kernel, and on a VM the hypervisor waking the other CPU, then the read);
- server path: from the datagram read to handing the reply to ``sendto``;
- to the client: the same, back;
- client receive path: from the client's read of the reply until ``rpc()`` returns.

The raw rows do what the bench's raw echo does (a ``DatagramProtocol`` that
decodes and re-encodes with msgpack), and stamp in ``datagram_received``. The
net-relay rows wrap what the udp transport's reader hands each datagram to, and
its ``send``, to take the stamps: a developer's
probe of private code, not an API. As in the bench, net-relay runs on the loop
``relay_core.run`` chooses (``NET_RELAY_LOOP``, else uvloop where it is
installed) and the raw echo on the stock loop. Medians of each segment over the round
trips of a run, then the median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from itertools import pairwise
from typing import Any

import msgpack

SEGMENTS = ("client send path", "to the server", "server path", "to the client",
            "client receive path", "round trip")
MESSAGE = {"n": 1, "name": "ada lovelace", "lang": "en", "src": "alpha",
           "tags": ["greeting", "demo", "bench"], "at": 1712345678.25}
now = time.perf_counter_ns
stamps: dict[str, list[int]] = {"received": [], "sending": []}


class _StampedEvents:
    """A udp transport's events, stamping each datagram its reader hands over."""

    def __init__(self, events: Any) -> None:
        self._events = events

    def packet_received(self, packet: bytes, source: Any) -> Any:
        stamps["received"].append(now())
        return self._events.packet_received(packet, source)

    def send_failed(self, destination: Any, error: BaseException) -> None:
        self._events.send_failed(destination, error)


def _stamp_the_udp_transport() -> None:
    """Stamp each datagram net-relay's udp transport receives, and each send, as the raw
    roles stamp theirs (its reading and sending are compiled, so what the reader calls
    and what the transport hands out as ``send`` are what get wrapped)."""
    from relay_transports import _udp

    transport_init = _udp.UdpTransport.__init__

    def stamped_init(self: Any, events: Any, **options: Any) -> None:
        transport_init(self, _StampedEvents(events), **options)
        send = self.send

        def stamped_send(destination: Any, packet: bytes) -> None:
            stamps["sending"].append(now())
            send(destination, packet)

        self.send = stamped_send

    _udp.UdpTransport.__init__ = stamped_init  # type: ignore[method-assign]


async def _relay_server() -> None:
    _stamp_the_udp_transport()
    from relay_core import ListenConfig, Node, NodeConfig
    from relay_core._demo import echo

    async with Node(NodeConfig(name="server", listen={"udp": ListenConfig("127.0.0.1", 0)})) as node:
        node.spawn(echo, name="echo")
        print(node.address("udp"), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    print(json.dumps(stamps), flush=True)


async def _relay_client(address: str, rpcs: int) -> None:
    """``rpcs`` counts the warm-up round trips too: the parent leaves them out."""
    _stamp_the_udp_transport()
    from relay_core import ListenConfig, Node, NodeConfig

    async with Node(NodeConfig(name="client", listen={"udp": ListenConfig("127.0.0.1", 0)})) as node:
        ref = node.ref(f"{address}/echo")
        started, ended = [], []
        for _ in range(rpcs):
            started.append(now())
            await ref.rpc(MESSAGE, timeout=5)
            ended.append(now())
    print(json.dumps({"started": started, "ended": ended, **stamps}), flush=True)


class _RawServer(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, source: Any) -> None:
        stamps["received"].append(now())
        reply = msgpack.packb(msgpack.unpackb(data))
        stamps["sending"].append(now())
        self.transport.sendto(reply, source)  # type: ignore[attr-defined]


class _RawClient(asyncio.DatagramProtocol):
    reply: asyncio.Future[object]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, source: Any) -> None:
        stamps["received"].append(now())
        self.reply.set_result(msgpack.unpackb(data))


async def _raw_server() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_RawServer, local_addr=("127.0.0.1", 0))
    print(transport.get_extra_info("sockname")[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    print(json.dumps(stamps), flush=True)


async def _raw_client(port: str, rpcs: int) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(
        _RawClient, remote_addr=("127.0.0.1", int(port)))
    started, ended = [], []
    for _ in range(rpcs):
        started.append(now())
        client.reply = loop.create_future()
        request = msgpack.packb(MESSAGE)
        stamps["sending"].append(now())
        transport.sendto(request)
        await client.reply
        ended.append(now())
    print(json.dumps({"started": started, "ended": ended, **stamps}), flush=True)


def _one_run(kind: str, rpcs: int, warm_up: int, pin: bool) -> dict[str, float]:
    """Median microseconds of each segment over one run's round trips."""
    prefix = ["taskset", "-c", "0"] if pin else []
    role = [sys.executable, __file__, "--role"]
    server = subprocess.Popen([*prefix, *role, f"{kind}-server"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdin is not None
    address = server.stdout.readline().strip()
    client = json.loads(subprocess.run(
        [*prefix, *role, f"{kind}-client", "--address", address, "--rpcs", str(warm_up + rpcs)],
        check=True, capture_output=True, text=True, timeout=300).stdout)
    server.stdin.write("\n")
    server.stdin.flush()
    served = json.loads(server.stdout.readline())
    server.wait(timeout=60)
    points = (client["started"], client["sending"], served["received"], served["sending"],
              client["received"], client["ended"])
    if len({len(point) for point in points}) != 1:
        raise RuntimeError("a packet was lost or repeated; run again")
    segments: dict[str, list[float]] = {name: [] for name in SEGMENTS}
    for index in range(warm_up, len(points[0])):
        times = [point[index] for point in points]
        for name, (start, end) in zip(SEGMENTS[:-1], pairwise(times), strict=True):
            segments[name].append((end - start) / 1000)
        segments[SEGMENTS[-1]].append((times[-1] - times[0]) / 1000)
    return {name: statistics.median(values) for name, values in segments.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rpcs", type=int, default=3000, help="round trips per run (3000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind, alternated (3)")
    parser.add_argument("--warm-up", type=int, default=300,
                        help="round trips before each run's measured ones (300)")
    parser.add_argument("--pin", action="store_true", help="both processes on CPU 0 (taskset)")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    roles = {"relay-server": lambda: _relay_server(),
             "relay-client": lambda: _relay_client(args.address, args.rpcs),
             "raw-server": lambda: _raw_server(),
             "raw-client": lambda: _raw_client(args.address, args.rpcs)}
    if args.role:
        # As in the bench: net-relay on the loop relay_core.run chooses (NET_RELAY_LOOP,
        # else uvloop where installed), the raw echo on the stock loop it is defined by.
        if args.role.startswith("relay"):
            from relay_core import run

            run(roles[args.role]())
        else:
            asyncio.run(roles[args.role]())
        return
    results: dict[str, list[dict[str, float]]] = {"raw": [], "relay": []}
    for number in range(args.runs):
        for kind, runs in results.items():
            print(f"run {number + 1}/{args.runs}: {kind}", file=sys.stderr, flush=True)
            runs.append(_one_run(kind, args.rpcs, args.warm_up, args.pin))
    from relay_core._loop import loop_name

    print(f"median microseconds, {args.rpcs} sequential RPCs per run, median of {args.runs} "
          f"runs, {'pinned to CPU 0' if args.pin else 'not pinned'}; net-relay on {loop_name()}, "
          "raw on the stock asyncio loop")
    print(f"{'segment':22s} {'raw asyncio':>12s} {'net-relay':>10s}")
    for name in SEGMENTS:
        raw = statistics.median(run[name] for run in results["raw"])
        relay = statistics.median(run[name] for run in results["relay"])
        print(f"{name:22s} {raw:12.1f} {relay:10.1f}")


if __name__ == "__main__":
    main()
