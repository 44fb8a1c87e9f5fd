"""The raw asyncio UDP roles: the baseline that does net-relay's job with nothing in between.

What an experienced asyncio user would write: ``DatagramProtocol`` callbacks,
msgpack per message, the socket buffers net-relay's udp transport asks for,
and for many requests in flight, the next request sent from the reply callback.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import msgpack

from ._common import LOOPBACK, QUIET, REPLY_TIMEOUT, Control, Result, emit, quantiles, sample

__all__ = ["udp_call", "udp_echo", "udp_sink", "udp_source"]

UDP_BUFFER = 4 * 1024 * 1024
"""Socket buffer asked for: what net-relay's udp transport asks for."""
DONE_MARKERS = 3
"""Empty datagrams the source sends at the end: one may be lost."""
TURN_EVERY = 1024
"""Datagrams the source sends between two turns of its event loop."""


class _Datagrams(asyncio.DatagramProtocol):
    """Base of the raw UDP protocols: keeps the transport, asks for big buffers."""

    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # not a subclass in 3.11
        sock = transport.get_extra_info("socket")
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)


async def _endpoint(protocol: _Datagrams, **where: Any) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, **where)
    return transport


class _Tally(_Datagrams):
    """Counts the msgpack messages in each datagram; an empty datagram means done."""

    def __init__(self) -> None:
        self.unpacker = msgpack.Unpacker()
        self.received = 0
        self.first = self.last = 0.0
        self.done = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not data:
            self.done.set()
            return
        self.last = time.perf_counter()
        if not self.received:
            self.first = self.last
        self.unpacker.feed(data)
        self.received += sum(1 for _ in self.unpacker)


async def _until_quiet(done: asyncio.Event, count: Callable[[], int]) -> None:
    """Return at ``done``, or once QUIET seconds pass without a new message after the first."""
    seen = 0
    while not done.is_set():
        try:
            async with asyncio.timeout(QUIET):
                await done.wait()
        except TimeoutError:
            if count() and count() == seen:
                return
            seen = count()


async def udp_sink(args: argparse.Namespace, control: Control) -> Result:
    tally = _Tally()
    transport = await _endpoint(tally, local_addr=(LOOPBACK, 0))
    emit({"ready": str(transport.get_extra_info("sockname")[1])})
    try:
        await _until_quiet(tally.done, lambda: tally.received)
    finally:
        transport.close()
    return {"received": tally.received, "window": tally.last - tally.first}


class _Paced(_Datagrams):
    """A sender that waits while asyncio says its buffer is full."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


def _batches(total: int, size: int) -> Iterator[bytes]:
    packb = msgpack.packb
    for start in range(0, total, size):
        yield b"".join(packb(sample(index)) for index in range(start, min(start + size, total)))


async def udp_source(args: argparse.Namespace, control: Control) -> Result:
    paced = _Paced()
    transport = await _endpoint(paced, remote_addr=(LOOPBACK, int(args.target)))
    started = time.perf_counter()
    for count, datagram in enumerate(_batches(args.messages, args.batch), 1):
        transport.sendto(datagram)
        if not paced.writable.is_set():
            await paced.writable.wait()
        elif count % TURN_EVERY == 0:
            await asyncio.sleep(0)  # so the loop still notices a closed stdin
    seconds = time.perf_counter() - started
    for _ in range(DONE_MARKERS):
        transport.sendto(b"")
        await asyncio.sleep(0.05)
    transport.close()
    return {"sent": args.messages, "seconds": seconds}


class _Echo(_Datagrams):
    """Decodes each request and sends it back, encoded again."""

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.transport.sendto(msgpack.packb(msgpack.unpackb(data)), addr)


async def udp_echo(args: argparse.Namespace, control: Control) -> Result:
    transport = await _endpoint(_Echo(), local_addr=(LOOPBACK, 0))
    emit({"ready": str(transport.get_extra_info("sockname")[1])})
    try:
        await control.stop.wait()
    finally:
        transport.close()
    return {}


class _Caller(_Datagrams):
    """Sends requests and matches replies by their ``n``.

    A request sent with a future is one round trip: its reply resolves the
    future. Otherwise the caller keeps ``window`` requests in flight, sending
    the next one from the reply callback; :meth:`refill` after a stall counts
    the waiting requests as lost and fills the window again.
    """

    def __init__(self, total: int, window: int) -> None:
        self.total, self.window = total, window
        self.next = self.completed = self.lost = 0
        self.pending: dict[int, asyncio.Future[None] | None] = {}
        self.finished = asyncio.Event()

    def request(self, future: asyncio.Future[None] | None = None) -> None:
        self.pending[self.next] = future
        self.transport.sendto(msgpack.packb(sample(self.next)))
        self.next += 1

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = msgpack.unpackb(data)
        if reply["n"] not in self.pending:
            return  # a late reply to a request already counted as lost
        future = self.pending.pop(reply["n"])
        self.completed += 1
        if future is not None:
            future.set_result(None)
        elif self.next < self.total:
            self.request()
        elif not self.pending:
            self.finished.set()

    def refill(self) -> None:
        self.lost += len(self.pending)
        self.pending.clear()
        while len(self.pending) < self.window and self.next < self.total:
            self.request()
        if not self.pending:
            self.finished.set()


async def _round_trips(caller: _Caller, count: int) -> list[int]:
    loop = asyncio.get_running_loop()
    samples = []
    for _ in range(count):
        future: asyncio.Future[None] = loop.create_future()
        started = time.perf_counter_ns()
        caller.request(future)
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                await future
        except TimeoutError:
            caller.pending.clear()
            caller.lost += 1
            continue
        samples.append(time.perf_counter_ns() - started)
    return samples


async def _pipeline(caller: _Caller) -> float:
    started = time.perf_counter()
    caller.refill()
    while not caller.finished.is_set():
        progress = caller.completed
        try:
            async with asyncio.timeout(REPLY_TIMEOUT):
                await caller.finished.wait()
        except TimeoutError:
            if caller.completed == progress:
                caller.refill()
    return time.perf_counter() - started


async def udp_call(args: argparse.Namespace, control: Control) -> Result:
    caller = _Caller(args.warmup + args.rpcs, args.inflight)
    transport = await _endpoint(caller, remote_addr=(LOOPBACK, int(args.target)))
    try:
        await _round_trips(caller, args.warmup)
        caller.completed = caller.lost = 0
        if args.inflight == 1:
            samples = await _round_trips(caller, args.rpcs)
            return {"completed": len(samples), "lost": caller.lost, **quantiles(samples)}
        seconds = await _pipeline(caller)
        return {"completed": caller.completed, "lost": caller.lost, "seconds": seconds}
    finally:
        transport.close()
