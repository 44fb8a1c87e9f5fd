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

Each process also reports the CPU time (user and system, ``getrusage``) it spent
over the measured round trips, per round trip. Unpinned on a VM, the two
processes' CPU times add up to nearly the whole round trip: the time a woken
CPU takes to run is charged to the process it runs.

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
import resource
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
cpu_marks: list[tuple[float, float]] = []
"""(user, system) seconds of CPU at the start and at the end of the measured round trips."""


def _mark_cpu() -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_marks.append((usage.ru_utime, usage.ru_stime))


def _received(count_cpu_from: int | None) -> None:
    """Stamp a datagram received; a server starts its CPU count at its first measured one."""
    if len(stamps["received"]) == count_cpu_from:
        _mark_cpu()
    stamps["received"].append(now())


class _StampedEvents:
    """A udp transport's events, stamping each datagram its reader hands over."""

    def __init__(self, events: Any, count_cpu_from: int | None) -> None:
        self._events = events
        self._count_cpu_from = count_cpu_from

    def packet_received(self, packet: bytes, source: Any) -> Any:
        _received(self._count_cpu_from)
        return self._events.packet_received(packet, source)

    def send_failed(self, destination: Any, error: BaseException) -> None:
        self._events.send_failed(destination, error)

    def packets_unsent(self, destination: Any, packets: Any, reason: Any) -> None:
        self._events.packets_unsent(destination, packets, reason)

    def input_malformed(self, source: Any, error: Any) -> None:
        self._events.input_malformed(source, error)


def _stamp_the_udp_transport(count_cpu_from: int | None) -> None:
    """Stamp each datagram net-relay's udp transport receives, and each send, as the raw
    roles stamp theirs (its reading and sending are compiled, so what the reader calls
    and what the transport hands out as ``send`` are what get wrapped)."""
    from relay_transports import _udp

    transport_init = _udp.UdpTransport.__init__

    def stamped_init(self: Any, events: Any, **options: Any) -> None:
        transport_init(self, _StampedEvents(events, count_cpu_from), **options)
        send = self.send

        def stamped_send(destination: Any, packet: bytes) -> None:
            stamps["sending"].append(now())
            send(destination, packet)

        self.send = stamped_send

    _udp.UdpTransport.__init__ = stamped_init  # type: ignore[method-assign]


async def _relay_server(warm_up: int) -> None:
    _stamp_the_udp_transport(warm_up)
    from relay_core import ListenConfig, Node, NodeConfig
    from relay_core.tools.demo import echo

    async with Node(NodeConfig(name="server", listen={"udp": ListenConfig("127.0.0.1", 0)})) as node:
        node.spawn(echo, name="echo")
        print(node.address("udp"), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        _mark_cpu()
    print(json.dumps({**stamps, "cpu": cpu_marks}), flush=True)


async def _relay_client(address: str, rpcs: int, warm_up: int) -> None:
    """``rpcs`` counts the ``warm_up`` round trips too: the parent leaves them out."""
    _stamp_the_udp_transport(None)  # the client counts its CPU around its own loop
    from relay_core import ListenConfig, Node, NodeConfig

    async with Node(NodeConfig(name="client", listen={"udp": ListenConfig("127.0.0.1", 0)})) as node:
        ref = node.ref(f"{address}/echo")
        started, ended = [], []
        for index in range(rpcs):
            if index == warm_up:
                _mark_cpu()
            started.append(now())
            await ref.rpc(MESSAGE, timeout=5)
            ended.append(now())
        _mark_cpu()
    print(json.dumps({"started": started, "ended": ended, **stamps, "cpu": cpu_marks}),
          flush=True)


class _RawServer(asyncio.DatagramProtocol):
    def __init__(self, warm_up: int) -> None:
        self.warm_up = warm_up

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, source: Any) -> None:
        _received(self.warm_up)
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


async def _raw_server(warm_up: int) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _RawServer(warm_up),
                                                       local_addr=("127.0.0.1", 0))
    print(transport.get_extra_info("sockname")[1], flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    _mark_cpu()
    print(json.dumps({**stamps, "cpu": cpu_marks}), flush=True)


async def _raw_client(port: str, rpcs: int, warm_up: int) -> None:
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(
        _RawClient, remote_addr=("127.0.0.1", int(port)))
    started, ended = [], []
    for index in range(rpcs):
        if index == warm_up:
            _mark_cpu()
        started.append(now())
        client.reply = loop.create_future()
        request = msgpack.packb(MESSAGE)
        stamps["sending"].append(now())
        transport.sendto(request)
        await client.reply
        ended.append(now())
    _mark_cpu()
    print(json.dumps({"started": started, "ended": ended, **stamps, "cpu": cpu_marks}),
          flush=True)


def _one_run(kind: str, rpcs: int, warm_up: int, pin: bool) -> dict[str, float]:
    """Median microseconds of each segment over one run's round trips."""
    prefix = ["taskset", "-c", "0"] if pin else []
    role = [sys.executable, __file__, "--warm-up", str(warm_up), "--role"]
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
    medians = {name: statistics.median(values) for name, values in segments.items()}
    for name, marks in (("client", client["cpu"]), ("server", served["cpu"])):
        (user_before, system_before), (user_after, system_after) = marks
        user = (user_after - user_before) / rpcs * 1e6
        medians[f"{name} CPU"] = user + (system_after - system_before) / rpcs * 1e6
        medians[f"{name} CPU user"] = user
    return medians


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
    roles = {"relay-server": lambda: _relay_server(args.warm_up),
             "relay-client": lambda: _relay_client(args.address, args.rpcs, args.warm_up),
             "raw-server": lambda: _raw_server(args.warm_up),
             "raw-client": lambda: _raw_client(args.address, args.rpcs, args.warm_up)}
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
    from relay_core.runtime.loop import loop_name

    print(f"median microseconds, {args.rpcs} sequential RPCs per run, median of {args.runs} "
          f"runs, {'pinned to CPU 0' if args.pin else 'not pinned'}; net-relay on {loop_name()}, "
          "raw on the stock asyncio loop")
    print(f"{'segment':22s} {'raw asyncio':>12s} {'net-relay':>10s}")
    for name in SEGMENTS:
        raw = statistics.median(run[name] for run in results["raw"])
        relay = statistics.median(run[name] for run in results["relay"])
        print(f"{name:22s} {raw:12.1f} {relay:10.1f}")
    print("CPU time per round trip, each process (user and system; of it user)")
    for process in ("client", "server"):
        for key, label in ((f"{process} CPU", f"{process} CPU"),
                           (f"{process} CPU user", "  of it user")):
            raw = statistics.median(run[key] for run in results["raw"])
            relay = statistics.median(run[key] for run in results["relay"])
            print(f"{label:22s} {raw:12.1f} {relay:10.1f}")


if __name__ == "__main__":
    main()
