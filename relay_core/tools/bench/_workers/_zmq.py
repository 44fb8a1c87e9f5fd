"""The pyzmq roles: what a user would pick instead of net-relay, over TCP on loopback.

Blocking sockets, as a pyzmq user after speed writes them (an asyncio wrapper
would only slow them down). Every receive and send has a timeout, so a role
whose peer is gone ends instead of hanging; a server checks stdin whenever
a receive times out. pyzmq is optional: without it these roles fail with a
message saying how to install it.
"""

from __future__ import annotations

import argparse
import importlib
import time
from typing import Any

import msgpack

from ._common import LOOPBACK, QUIET, REPLY_TIMEOUT, Result, emit, quantiles, sample, stdin_readable

__all__ = ["zmq_pull", "zmq_push", "zmq_rep", "zmq_req"]


def _zmq() -> Any:
    try:
        return importlib.import_module("zmq")
    except ImportError:
        raise RuntimeError("pyzmq is not installed (pip install 'net-relay[bench]')") from None


def _server(kind: str) -> tuple[Any, Any]:
    zmq = _zmq()
    context = zmq.Context()
    sock = context.socket(getattr(zmq, kind))
    sock.rcvtimeo = int(QUIET * 1000)
    port = sock.bind_to_random_port(f"tcp://{LOOPBACK}")
    emit({"ready": str(port)})
    return context, sock


def _client(kind: str, target: str) -> tuple[Any, Any]:
    zmq = _zmq()
    context = zmq.Context()
    sock = context.socket(getattr(zmq, kind))
    sock.rcvtimeo = sock.sndtimeo = sock.linger = int(REPLY_TIMEOUT * 1000)
    sock.connect(f"tcp://{LOOPBACK}:{int(target)}")
    return context, sock


def _close(context: Any, sock: Any) -> None:
    sock.close()
    context.term()


def zmq_pull(args: argparse.Namespace) -> Result:
    context, sock = _server("PULL")
    again, unpackb = _zmq().Again, msgpack.unpackb
    received, first, last = 0, 0.0, 0.0
    try:
        while True:
            try:
                data = sock.recv()
            except again:
                if received:
                    break  # no done message: take the quiet as the end
                if stdin_readable():
                    raise RuntimeError("told to stop before any message arrived") from None
                continue
            if not data:
                break
            last = time.perf_counter()
            first = first or last
            unpackb(data)
            received += 1
    finally:
        _close(context, sock)
    return {"received": received, "window": last - first}


def zmq_push(args: argparse.Namespace) -> Result:
    context, sock = _client("PUSH", args.target)
    packb = msgpack.packb
    try:
        started = time.perf_counter()
        for index in range(args.messages):
            sock.send(packb(sample(index)))
        seconds = time.perf_counter() - started
        sock.send(b"")
    finally:
        _close(context, sock)
    return {"sent": args.messages, "seconds": seconds}


def zmq_rep(args: argparse.Namespace) -> Result:
    context, sock = _server("REP")
    again = _zmq().Again
    try:
        while True:
            try:
                data = sock.recv()
            except again:
                if stdin_readable():
                    return {}
                continue
            sock.send(msgpack.packb(msgpack.unpackb(data)))
    finally:
        _close(context, sock)


def zmq_req(args: argparse.Namespace) -> Result:
    context, sock = _client("REQ", args.target)
    samples = []
    try:
        for index in range(args.warmup + args.rpcs):
            started = time.perf_counter_ns()
            sock.send(msgpack.packb(sample(index)))
            msgpack.unpackb(sock.recv())  # zmq.Again after REPLY_TIMEOUT: TCP lost nothing
            samples.append(time.perf_counter_ns() - started)
    finally:
        _close(context, sock)
    return {"completed": args.rpcs, "lost": 0, **quantiles(samples[args.warmup:])}
