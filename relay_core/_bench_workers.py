"""What runs inside each child process of ``net-relay bench``: one role per process.

Started as ``python -m relay_core._bench_workers ROLE [OPTIONS]``. The roles
come in pairs, a server and a client, one pair per way of doing the job:
raw asyncio UDP (``udp-*``), pyzmq over TCP (``zmq-*``) and net-relay nodes
(``relay-*``). The rules every role keeps, which the orchestrator in
:mod:`relay_core._bench` relies on:

- Only loopback: a server binds 127.0.0.1 on a free port and, once it can
  receive, prints ``{"ready": ADDRESS}``; its client gets ADDRESS as ``--target``.
- A role's last line on stdout is its result, one JSON object; a role that
  fails prints ``{"error": "..."}`` instead and exits with status 1.
- A sink (``*-sink``, ``zmq-pull``) ends by itself, at the sender's empty
  "done" message or after :data:`QUIET` seconds without data. Every other
  server ends at the first line on its stdin. Any server gives up when stdin
  closes, so no child outlives the orchestrator.
- Time is read with ``time.perf_counter`` and compared within one process only.
- Every payload is :func:`sample` packed by the codec under test, about 80
  bytes as msgpack; each side decodes what it receives, as an application would.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import select
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, cast

import msgpack

from ._actors import ActorContext, ActorRef
from ._config import ListenConfig, NodeConfig, PeerConfig
from ._demo import echo
from ._errors import RpcTimeout
from ._node import Node
from ._rpc import Rpc

__all__ = ["QUIET", "main", "sample"]

LOOPBACK = "127.0.0.1"
QUIET = 0.5
"""Seconds without data after which a sink takes the stream as ended (its done marker was lost)."""
REPLY_TIMEOUT = 2.0
"""Seconds a caller waits for one reply before counting the request as lost."""
SENDS_PER_TURN = 100
"""``RemoteRef.send`` never yields, so the relay sender lets the loop turn (and the
node flush its coalesced packets) after this many messages."""
MAILBOX = 10_000
"""Mailbox size of the relay sink and echo actors (the demo counter uses the same)."""
UDP_BUFFER = 4 * 1024 * 1024
"""Socket buffer the raw UDP roles ask for: what net-relay's udp transport asks for."""
DONE_MARKERS = 3
"""Empty datagrams a raw UDP source sends at the end: one may be lost."""

Result = dict[str, object]


def sample(index: int) -> dict[str, object]:
    """The message every role sends: a small greeting, 82 bytes as msgpack."""
    return {"n": index, "name": "ada lovelace", "lang": "en", "src": "alpha",
            "tags": ["greeting", "demo", "bench"], "at": 1712345678.25}


def _emit(line: dict[str, object]) -> None:
    print(json.dumps(line), flush=True)


def _quantiles(samples_ns: list[int]) -> Result:
    """p50 and p99 (nearest rank) in microseconds."""
    ordered = sorted(samples_ns)
    if not ordered:
        return {"p50_us": None, "p99_us": None}

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return {"p50_us": rank(0.50), "p99_us": rank(0.99)}


# -- stdin: the orchestrator's stop line, or its end ---------------------------------


async def _stdin_line() -> bytes:
    """Return the first line on stdin, or b"" once stdin is closed."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return await reader.readline()


async def _stdin_closed() -> None:
    """Return once stdin is closed; lines before that are ignored."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        pass


def _stdin_readable() -> bool:
    """True when stdin has a line or is closed (for the blocking zmq roles)."""
    readable, _, _ = select.select([sys.stdin], [], [], 0)
    return bool(readable)


async def _first(main: Awaitable[Result], abort: Awaitable[None], why: str) -> Result:
    """Run ``main``, unless ``abort`` finishes first: then fail with ``why``."""
    work, stop = asyncio.ensure_future(main), asyncio.ensure_future(abort)
    try:
        await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not work.done():
        work.cancel()
        raise RuntimeError(why)
    return work.result()


# -- raw asyncio UDP ------------------------------------------------------------------


class _Datagrams(asyncio.DatagramProtocol):
    """Base of the raw UDP protocols: keeps the transport, asks for big buffers."""

    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # not a subclass in 3.11
        sock = transport.get_extra_info("socket")
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)


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


async def udp_sink(args: argparse.Namespace) -> Result:
    tally = _Tally()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: tally, (LOOPBACK, 0))
    _emit({"ready": str(transport.get_extra_info("sockname")[1])})

    async def counted() -> Result:
        await _until_quiet(tally.done, lambda: tally.received)
        return {"received": tally.received, "window": tally.last - tally.first}

    try:
        return await _first(counted(), _stdin_closed(), "stopped before the stream ended")
    finally:
        transport.close()


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


async def udp_source(args: argparse.Namespace) -> Result:
    paced = _Paced()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: paced, remote_addr=(LOOPBACK, int(args.target)))
    started = time.perf_counter()
    for datagram in _batches(args.messages, args.batch):
        transport.sendto(datagram)
        if not paced.writable.is_set():
            await paced.writable.wait()
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


async def udp_echo(args: argparse.Namespace) -> Result:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Echo, (LOOPBACK, 0))
    _emit({"ready": str(transport.get_extra_info("sockname")[1])})
    try:
        await _stdin_line()
    finally:
        transport.close()
    return {}


class _Caller(_Datagrams):
    """Sends requests and matches replies by their ``n``.

    With ``window`` > 1 it keeps that many requests in flight, sending the next
    one from the reply callback; a stall of REPLY_TIMEOUT counts the waiting
    requests as lost and refills the window.
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


async def _udp_round_trips(caller: _Caller, count: int) -> list[int]:
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


async def _udp_pipeline(caller: _Caller) -> float:
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


async def udp_call(args: argparse.Namespace) -> Result:
    caller = _Caller(args.warmup + args.rpcs, args.inflight)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: caller, remote_addr=(LOOPBACK, int(args.target)))
    try:
        await _udp_round_trips(caller, args.warmup)
        caller.completed = caller.lost = 0
        if args.inflight == 1:
            samples = await _udp_round_trips(caller, args.rpcs)
            return {"completed": len(samples), "lost": caller.lost, **_quantiles(samples)}
        seconds = await _udp_pipeline(caller)
        return {"completed": caller.completed, "lost": caller.lost, "seconds": seconds}
    finally:
        transport.close()


# -- pyzmq (blocking sockets, as a pyzmq user would write it) -------------------------


def _zmq() -> Any:
    try:
        return importlib.import_module("zmq")
    except ImportError:
        raise RuntimeError("pyzmq is not installed (pip install 'net-relay[bench]')") from None


def _zmq_server(kind: str) -> tuple[Any, Any]:
    zmq = _zmq()
    context = zmq.Context()
    sock = context.socket(getattr(zmq, kind))
    sock.rcvtimeo = int(QUIET * 1000)
    port = sock.bind_to_random_port(f"tcp://{LOOPBACK}")
    _emit({"ready": str(port)})
    return context, sock


def _zmq_client(kind: str, target: str) -> tuple[Any, Any]:
    zmq = _zmq()
    context = zmq.Context()
    sock = context.socket(getattr(zmq, kind))
    sock.rcvtimeo = int(REPLY_TIMEOUT * 1000)
    sock.linger = int(REPLY_TIMEOUT * 1000)
    sock.connect(f"tcp://{LOOPBACK}:{int(target)}")
    return context, sock


def _zmq_close(context: Any, sock: Any) -> None:
    sock.close()
    context.term()


def zmq_pull(args: argparse.Namespace) -> Result:
    context, sock = _zmq_server("PULL")
    again, unpackb = _zmq().Again, msgpack.unpackb
    received, first, last = 0, 0.0, 0.0
    try:
        while True:
            try:
                data = sock.recv()
            except again:
                if received:
                    break  # the done message never came: take the quiet as the end
                if _stdin_readable():
                    raise RuntimeError("stopped before any message arrived") from None
                continue
            if not data:
                break
            last = time.perf_counter()
            first = first or last
            unpackb(data)
            received += 1
    finally:
        _zmq_close(context, sock)
    return {"received": received, "window": last - first}


def zmq_push(args: argparse.Namespace) -> Result:
    context, sock = _zmq_client("PUSH", args.target)
    packb = msgpack.packb
    started = time.perf_counter()
    for index in range(args.messages):
        sock.send(packb(sample(index)))
    seconds = time.perf_counter() - started
    sock.send(b"")
    _zmq_close(context, sock)
    return {"sent": args.messages, "seconds": seconds}


def zmq_rep(args: argparse.Namespace) -> Result:
    context, sock = _zmq_server("REP")
    again = _zmq().Again
    try:
        while True:
            try:
                data = sock.recv()
            except again:
                if _stdin_readable():
                    return {}
                continue
            sock.send(msgpack.packb(msgpack.unpackb(data)))
    finally:
        _zmq_close(context, sock)


def zmq_req(args: argparse.Namespace) -> Result:
    context, sock = _zmq_client("REQ", args.target)
    samples = []
    try:
        for index in range(args.warmup + args.rpcs):
            started = time.perf_counter_ns()
            sock.send(msgpack.packb(sample(index)))
            msgpack.unpackb(sock.recv())  # a lost reply raises zmq.Again: TCP lost nothing
            samples.append(time.perf_counter_ns() - started)
    finally:
        _zmq_close(context, sock)
    return {"completed": args.rpcs, "lost": 0, **_quantiles(samples[args.warmup:])}


# -- net-relay nodes ------------------------------------------------------------------


def _node_config(args: argparse.Namespace, name: str, target: str | None = None) -> NodeConfig:
    quic = args.transport == "quic"
    tls = {"certificate": args.cert, "private_key": args.key} if quic else {}
    listen = {args.transport: ListenConfig(LOOPBACK, 0, tls)}
    peers = {}
    if target is not None:
        trust = {"ca": args.cert} if quic else {}
        peers["server"] = PeerConfig(address=target, codec=args.codec, options=trust)
    return NodeConfig(name=name, codec=args.codec, listen=listen, peers=peers)


class _Counted:
    """What the relay sink's counting actor saw."""

    def __init__(self) -> None:
        self.received = 0
        self.first = self.last = 0.0

    async def actor(self, ctx: ActorContext) -> None:
        """Counts plain messages; answers an RPC with the count so far."""
        async for message in ctx:
            if isinstance(message, Rpc):
                message.respond(self.received)
                continue
            self.last = time.perf_counter()
            if not self.received:
                self.first = self.last
            self.received += 1


async def relay_sink(args: argparse.Namespace) -> Result:
    counted = _Counted()
    async with Node(_node_config(args, "bench-sink")) as node:
        node.spawn(counted.actor, name="tally", mailbox_size=MAILBOX)
        _emit({"ready": node.address(args.transport)})
        await _stdin_line()
        dropped = node.stats().total["mailbox_full"]
    window = counted.last - counted.first
    return {"received": counted.received, "window": window, "mailbox_full": dropped}


async def _settled_count(ref: ActorRef) -> object:
    """Ask the sink for its count until two answers, QUIET/2 apart, agree."""
    previous = None
    while True:
        count = await ref.rpc("count?", timeout=REPLY_TIMEOUT, retries=3)
        if count == previous:
            return count
        previous = count
        await asyncio.sleep(QUIET / 2)


async def relay_source(args: argparse.Namespace) -> Result:
    async with Node(_node_config(args, "bench-source", args.target)) as node:
        ref = node.ref("server/tally")
        started = time.perf_counter()
        for index in range(args.messages):
            await ref.send(sample(index))
            if index % SENDS_PER_TURN == SENDS_PER_TURN - 1:
                await asyncio.sleep(0)
        seconds = time.perf_counter() - started
        count = await _settled_count(ref)
        errors = node.stats().total["send_errors"]
    return {"sent": args.messages, "seconds": seconds, "counted": count, "send_errors": errors}


async def relay_echo(args: argparse.Namespace) -> Result:
    async with Node(_node_config(args, "bench-echo")) as node:
        node.spawn(echo, name="echo", mailbox_size=MAILBOX)
        _emit({"ready": node.address(args.transport)})
        await _stdin_line()
    return {}


async def _relay_round_trips(ref: ActorRef, indexes: Iterator[int], samples: list[int]) -> int:
    """Call for each index (shared with other callers); return how many timed out."""
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


async def relay_call(args: argparse.Namespace) -> Result:
    async with Node(_node_config(args, "bench-caller", args.target)) as node:
        ref = node.ref("server/echo")
        await _relay_round_trips(ref, iter(range(args.warmup)), [])
        samples: list[int] = []
        indexes = iter(range(args.rpcs))
        started = time.perf_counter()
        callers = [_relay_round_trips(ref, indexes, samples) for _ in range(args.inflight)]
        lost = sum(await asyncio.gather(*callers))
        seconds = time.perf_counter() - started
    if args.inflight == 1:
        return {"completed": len(samples), "lost": lost, **_quantiles(samples)}
    return {"completed": len(samples), "lost": lost, "seconds": seconds}


# -- command line ---------------------------------------------------------------------

ASYNC_ROLES: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, Result]]] = {
    "udp-sink": udp_sink, "udp-source": udp_source, "udp-echo": udp_echo, "udp-call": udp_call,
    "relay-sink": relay_sink, "relay-source": relay_source, "relay-echo": relay_echo,
    "relay-call": relay_call,
}
BLOCKING_ROLES: dict[str, Callable[[argparse.Namespace], Result]] = {
    "zmq-pull": zmq_pull, "zmq-push": zmq_push, "zmq-rep": zmq_rep, "zmq-req": zmq_req,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m relay_core._bench_workers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=sorted({**ASYNC_ROLES, **BLOCKING_ROLES}))
    parser.add_argument("--target", help="the ADDRESS the server printed as ready")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1, help="messages per raw UDP datagram")
    parser.add_argument("--rpcs", type=int, default=100)
    parser.add_argument("--inflight", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0, help="round trips left out of the result")
    parser.add_argument("--transport", default="udp")
    parser.add_argument("--codec", default="msgpack")
    parser.add_argument("--cert", help="PEM certificate (quic)")
    parser.add_argument("--key", help="PEM private key (quic)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        blocking = BLOCKING_ROLES.get(args.role)
        result = blocking(args) if blocking else asyncio.run(ASYNC_ROLES[args.role](args))
    except Exception as exc:  # noqa: BLE001 - reported to the orchestrator as one line
        _emit({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    _emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
