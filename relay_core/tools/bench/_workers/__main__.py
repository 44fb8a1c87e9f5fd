"""``python -m relay_core.tools.bench._workers ROLE [OPTIONS]``: run one role, print its result."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

from relay_core.runtime.loop import CHOICES as LOOPS
from relay_core.runtime.loop import run

from ._common import AsyncRole, Control, Result, emit
from ._growth import GROWTH_ROLES, add_growth_arguments
from ._raw import udp_call, udp_echo, udp_sink, udp_source
from ._relay import relay_call, relay_echo, relay_sink, relay_source
from ._zmq import zmq_pull, zmq_push, zmq_rep, zmq_req

ASYNC_ROLES: dict[str, AsyncRole] = {
    "udp-sink": udp_sink, "udp-source": udp_source, "udp-echo": udp_echo, "udp-call": udp_call,
    "relay-sink": relay_sink, "relay-source": relay_source, "relay-echo": relay_echo,
    "relay-call": relay_call, **GROWTH_ROLES,
}
BLOCKING_ROLES: dict[str, Callable[[argparse.Namespace], Result]] = {
    "zmq-pull": zmq_pull, "zmq-push": zmq_push, "zmq-rep": zmq_rep, "zmq-req": zmq_req,
}


async def _guarded(role: AsyncRole, args: argparse.Namespace) -> Result:
    """Run ``role`` until it returns, or fail once stdin closes."""
    control = Control()
    watcher = asyncio.ensure_future(control.watch())
    work = asyncio.ensure_future(role(args, control))
    closed = asyncio.ensure_future(control.closed.wait())
    try:
        await asyncio.wait({work, closed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        closed.cancel()
    if not work.done():
        work.cancel()
        raise RuntimeError("stdin closed before the role finished: the bench has stopped")
    return work.result()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m relay_core.tools.bench._workers",
                                     description="one side of one net-relay bench run")
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
    parser.add_argument("--loop", choices=LOOPS,
                        help="event loop of an asyncio role (default: as relay_core.run chooses)")
    add_growth_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        blocking = BLOCKING_ROLES.get(args.role)
        result = blocking(args) if blocking else run(_guarded(ASYNC_ROLES[args.role], args),
                                                     loop=args.loop)
    except Exception as exc:  # noqa: BLE001 - reported to the orchestrator as one line
        emit({"error": f"{type(exc).__name__}: {exc}"})
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
