"""The net-relay roles: two nodes, actor to actor, the way the README shows them.

The sink is a node with a counting actor; the echo server is a node with the
demo ``echo`` actor. Their clients are nodes that send through a ref to the
server, named as a configured peer with the codec under test.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterator

from relay_core import ActorContext, ActorRef
from relay_core.config.node_config import ListenConfig, NodeConfig, PeerConfig
from relay_core.errors import RpcTimeout
from relay_core.runtime.node import Node
from relay_core.runtime.rpc import Rpc
from relay_core.tools.demo import echo

from ._common import LOOPBACK, QUIET, REPLY_TIMEOUT, Control, Result, emit, quantiles, sample

__all__ = ["relay_call", "relay_echo", "relay_sink", "relay_source"]

SENDS_PER_TURN = 100
"""``RemoteRef.send`` never yields, so the sender lets the loop turn (and the
node flush its coalesced packets) after this many messages, as the demo does."""
COUNT_TIMEOUT = 10.0
"""Seconds the sender waits for the sink's count before asking again."""
MAILBOX = 10_000
"""Mailbox size of the sink and echo actors (the demo counter's size)."""


def _config(args: argparse.Namespace, name: str, target: str | None = None) -> NodeConfig:
    quic = args.transport == "quic"
    tls = {"certificate": args.cert, "private_key": args.key} if quic else {}
    listen = {args.transport: ListenConfig(LOOPBACK, 0, tls)}
    peers = {}
    if target is not None:
        trust = {"ca": args.cert} if quic else {}
        peers["server"] = PeerConfig(address=target, codec=args.codec, options=trust)
    return NodeConfig(name=name, codec=args.codec, listen=listen, peers=peers)


class _Counter:
    """An actor that counts plain messages and answers an RPC with the count so far."""

    def __init__(self) -> None:
        self.received = 0
        self.first = self.last = 0.0

    async def actor(self, ctx: ActorContext) -> None:
        async for message in ctx:
            if isinstance(message, Rpc):
                message.respond(self.received)
                continue
            self.last = time.perf_counter()
            if not self.received:
                self.first = self.last
            self.received += 1


async def relay_sink(args: argparse.Namespace, control: Control) -> Result:
    counter = _Counter()
    async with Node(_config(args, "bench-sink")) as node:
        node.spawn(counter.actor, name="counter", mailbox_size=MAILBOX)
        emit({"ready": node.address(args.transport)})
        await control.stop.wait()
        dropped = node.stats().total["mailbox_full"]
    window = counter.last - counter.first
    return {"received": counter.received, "window": window, "mailbox_full": dropped}


async def _settled_count(ref: ActorRef) -> object:
    """Ask the sink for its count until two answers, QUIET/2 apart, agree.

    On a stream transport the question waits behind every message still
    queued, so it is asked again, without end: the bench's time limit bounds it.
    """
    previous = None
    while True:
        try:
            count = await ref.rpc("count?", timeout=COUNT_TIMEOUT)
        except RpcTimeout:
            continue
        if count == previous:
            return count
        previous = count
        await asyncio.sleep(QUIET / 2)


async def relay_source(args: argparse.Namespace, control: Control) -> Result:
    async with Node(_config(args, "bench-source", args.target)) as node:
        ref = node.ref("server/counter")
        started = time.perf_counter()
        for index in range(args.messages):
            await ref.send(sample(index))
            if index % SENDS_PER_TURN == SENDS_PER_TURN - 1:
                await asyncio.sleep(0)
        seconds = time.perf_counter() - started
        count = await _settled_count(ref)
        errors = node.stats().total["send_errors"]
    return {"sent": args.messages, "seconds": seconds, "counted": count, "send_errors": errors}


async def relay_echo(args: argparse.Namespace, control: Control) -> Result:
    async with Node(_config(args, "bench-echo")) as node:
        node.spawn(echo, name="echo", mailbox_size=MAILBOX)
        emit({"ready": node.address(args.transport)})
        await control.stop.wait()
    return {}


async def _round_trips(ref: ActorRef, indexes: Iterator[int], samples: list[int]) -> int:
    """Call for each index (an iterator other callers share); return how many timed out."""
    lost = 0
    for index in indexes:
        started = time.perf_counter_ns()
        try:
            await ref.rpc(sample(index), timeout=REPLY_TIMEOUT)
        except RpcTimeout:
            lost += 1
            continue
        samples.append(time.perf_counter_ns() - started)
    return lost


async def relay_call(args: argparse.Namespace, control: Control) -> Result:
    async with Node(_config(args, "bench-caller", args.target)) as node:
        ref = node.ref("server/echo")
        await _round_trips(ref, iter(range(args.warmup)), [])
        samples: list[int] = []
        indexes = iter(range(args.rpcs))
        started = time.perf_counter()
        callers = [_round_trips(ref, indexes, samples) for _ in range(args.inflight)]
        lost = sum(await asyncio.gather(*callers))
        seconds = time.perf_counter() - started
    if args.inflight == 1:
        return {"completed": len(samples), "lost": lost, **quantiles(samples)}
    return {"completed": len(samples), "lost": lost, "seconds": seconds}
