"""The growth roles: how net-relay's cost grows with peers, message size and compression.

- ``growth-sink``: a node whose ``counter`` actor counts what arrives.
- ``growth-source``: ``--nodes`` sender nodes in one process, each a distinct
  peer of the sink, each sending ``--messages`` messages of one ``--payload`` kind.
- ``growth-idle``: ``--nodes`` nodes with an ``echo`` actor, waiting to be called.
- ``growth-hub``: one node with every idle node as a configured peer, which
  exchanges one RPC with each and reports the memory that cost it.

Rules, besides those of the package:

- Clients (source, hub) print ``{"ready": ""}`` once set up and start at the
  first line on stdin, so that several sender processes start together.
- ``send`` has no backpressure, so a sender streams in windows: ``--window``
  messages per node, then one count request per node, answered once the
  counter has seen the window (the mailbox is first in, first out). At most one
  window per node is in flight, so no socket buffer, transport queue or
  mailbox overflows because the sender outran the receiver.
- Memory is read after a full garbage collection: the resident set from
  /proc/self/statm (Linux), or what tracemalloc traces; never both in one
  process, since tracemalloc's own bookkeeping would inflate the resident set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from relay_core.config.node_config import ListenConfig, NodeConfig, PeerConfig
from relay_core.errors import RpcTimeout
from relay_core.plugins.registry import PluginRegistry
from relay_core.runtime.actors import ActorRef
from relay_core.runtime.node import Node
from relay_core.tools.demo import echo

from ._common import LOOPBACK, AsyncRole, Control, Result, emit
from ._payloads import KINDS, pool
from ._relay import COUNT_TIMEOUT, MAILBOX, SENDS_PER_TURN, _Counter

__all__ = ["GROWTH_ROLES", "add_growth_arguments"]

EXCHANGES_AT_ONCE = 50
"""RPCs the hub keeps in flight while it greets its peers (quic handshakes included)."""


def add_growth_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker options only the growth roles take."""
    parser.add_argument("--nodes", type=int, default=1, help="nodes in this process")
    parser.add_argument("--window", type=int, default=100, help="messages per node per window")
    parser.add_argument("--payload", choices=KINDS, default="bytes")
    parser.add_argument("--size", type=int, default=64, help="bytes of a bytes/random payload")
    parser.add_argument("--compressor", default="none")
    parser.add_argument("--dictionary", help="zstd dictionary file both nodes load")
    parser.add_argument("--memory", choices=("rss", "tracemalloc"), default="rss")


def _config(args: argparse.Namespace, name: str, peers: Mapping[str, str]) -> NodeConfig:
    """A node listening on loopback, with ``peers`` (name: node URL) and the row's compressor."""
    quic = args.transport == "quic"
    tls = {"certificate": args.cert, "private_key": args.key} if quic else {}
    trust = {"ca": args.cert} if quic else {}
    zstd = {"zstd": {"dictionary": args.dictionary}} if args.dictionary else {}
    return NodeConfig(
        name=name, codec=args.codec, listen={args.transport: ListenConfig(LOOPBACK, 0, tls)},
        peers={peer: PeerConfig(address, args.codec, args.compressor, trust)
               for peer, address in peers.items()},
        compressor_options=zstd)


@contextlib.asynccontextmanager
async def _started(configs: Sequence[NodeConfig], registry: PluginRegistry
                   ) -> AsyncIterator[list[Node]]:
    """One started node per config, all sharing ``registry``; all closed at the end."""
    nodes = [Node(config, registry=registry) for config in configs]
    try:
        for node in nodes:
            await node.start()
        yield nodes
    finally:
        await asyncio.gather(*(node.close() for node in nodes))


async def _ask(ref: ActorRef) -> bool:
    """One RPC; False when no answer came in time."""
    try:
        await ref.rpc("ping", timeout=COUNT_TIMEOUT)
    except RpcTimeout:
        return False
    return True


async def _barrier(refs: Sequence[ActorRef]) -> int:
    """Ask every ref at once; return how many gave no answer in time."""
    return [*await asyncio.gather(*(_ask(ref) for ref in refs))].count(False)


async def _stream(refs: Sequence[ActorRef], messages: Sequence[object], count: int,
                  window: int) -> int:
    """Send ``count`` messages to every ref, a window at a time; return unanswered barriers."""
    stalls = sends = 0
    for start in range(0, count, window):
        for index in range(start, min(start + window, count)):
            message = messages[index % len(messages)]
            for ref in refs:
                await ref.send(message)
                sends += 1
                if sends % SENDS_PER_TURN == 0:
                    await asyncio.sleep(0)  # RemoteRef.send never yields: let packets leave
        stalls += await _barrier(refs)
    return stalls


def _wire_bytes(nodes: Sequence[Node]) -> int:
    return sum(node.stats().total["bytes_sent"] for node in nodes)


async def growth_sink(args: argparse.Namespace, control: Control) -> Result:
    counter = _Counter()
    async with Node(_config(args, "growth-sink", {})) as node:
        node.spawn(counter.actor, name="counter", mailbox_size=MAILBOX)
        emit({"ready": node.address(args.transport)})
        await control.stop.wait()
        total = node.stats().total
    return {"received": counter.received, "window": counter.last - counter.first,
            **{key: total[key] for key in ("mailbox_full", "undecodable", "unsupported_codec")}}


async def growth_source(args: argparse.Namespace, control: Control) -> Result:
    registry = PluginRegistry.load()
    messages = pool(args.payload, args.size)
    configs = [_config(args, f"growth-source-{index}", {"server": args.target})
               for index in range(args.nodes)]
    async with _started(configs, registry) as nodes:
        refs = [node.ref("server/counter") for node in nodes]
        stalls = await _barrier(refs)  # connections and handshakes happen before timing
        before = _wire_bytes(nodes)
        emit({"ready": ""})
        await control.stop.wait()  # here, the orchestrator's "go"
        started = time.perf_counter()
        stalls += await _stream(refs, messages, args.messages, args.window)
        seconds = time.perf_counter() - started
        wire = _wire_bytes(nodes) - before
    sizes = [len(registry.codec(args.codec).encode(message)) for message in messages]
    payload = sum(sizes[index % len(sizes)] for index in range(args.messages))
    return {"sent": args.messages * args.nodes, "seconds": seconds, "stalls": stalls,
            "wire_bytes": wire, "payload_bytes": payload * args.nodes}


async def growth_idle(args: argparse.Namespace, control: Control) -> Result:
    configs = [_config(args, f"growth-idle-{index}", {}) for index in range(args.nodes)]
    async with _started(configs, PluginRegistry.load()) as nodes:
        for node in nodes:
            node.spawn(echo, name="echo")
        emit({"ready": ",".join(node.address(args.transport) for node in nodes)})
        await control.stop.wait()
    return {}


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        raise RuntimeError("the resident set is read from /proc/self/statm, which this system "
                           "lacks (it is Linux's); the tracemalloc row still measures") from None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _traced_bytes() -> int:
    return tracemalloc.get_traced_memory()[0]


def _settled(measure: Callable[[], int]) -> int:
    gc.collect()
    return measure()


async def _greet(node: Node, peers: Sequence[str]) -> int:
    """One RPC to each peer's echo actor, EXCHANGES_AT_ONCE at a time; return the unanswered."""
    lost = 0
    for start in range(0, len(peers), EXCHANGES_AT_ONCE):
        chunk = peers[start:start + EXCHANGES_AT_ONCE]
        lost += await _barrier([node.ref(f"{peer}/echo") for peer in chunk])
    return lost


async def growth_hub(args: argparse.Namespace, control: Control) -> Result:
    addresses = args.target.split(",")
    if len(addresses) < 2:
        raise ValueError("the hub needs at least 2 peers: one to warm up, one to measure")
    measure = _traced_bytes if args.memory == "tracemalloc" else _resident_bytes
    if args.memory == "tracemalloc":
        tracemalloc.start()
    emit({"ready": ""})
    await control.stop.wait()
    empty = _settled(measure)
    config = _config(args, "growth-hub", {f"p{i}": url for i, url in enumerate(addresses)})
    configured = _settled(measure)
    async with Node(config) as node:
        lost = await _greet(node, ["p0"])  # the first exchange pays one-time costs
        warmed = _settled(measure)
        lost += await _greet(node, [f"p{index}" for index in range(1, len(addresses))])
        greeted = _settled(measure)
    config_cost = (configured - empty) / len(addresses)
    state_cost = (greeted - warmed) / (len(addresses) - 1)
    return {"peers": len(addresses), "lost": lost, "config_per_peer": config_cost,
            "state_per_peer": state_cost, "per_peer": config_cost + state_cost}


GROWTH_ROLES: dict[str, AsyncRole] = {
    "growth-sink": growth_sink, "growth-source": growth_source, "growth-idle": growth_idle,
    "growth-hub": growth_hub,
}
