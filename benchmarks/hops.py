"""How many of net-relay's own functions one message passes through, sending and receiving.

Run ``python benchmarks/hops.py [--transport udp|tcp] [--scenario oneway|rpc] [--show]``. Two nodes in one
process exchange warm-up messages; then one more one-way message is followed with
:func:`sys.setprofile`, in pure Python (``NET_RELAY_PURE_PYTHON=1`` is set here, as
compiled functions are invisible to a profiler) on the asyncio loop. Only functions
defined in the project's packages count. The send path is everything
``RemoteRef.send`` calls until the packet is handed to the socket; the receive path
is everything the transport's receive callback calls until the message is in the
actor's mailbox. For each it prints how many project functions were entered (every
call counts, a property too) and the longest chain of nested calls; ``--show``
prints the call tree. ``--scenario rpc`` follows one round trip to an echo actor
instead, and counts every project function entered on both nodes, the handler's too.

It uses the public API only, so the same script measures any revision of the
project: copy it into an older checkout to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

os.environ["NET_RELAY_PURE_PYTHON"] = "1"
os.environ["NET_RELAY_LOOP"] = "asyncio"

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = tuple(str(ROOT / name) + os.sep
                 for name in ("relay_core", "relay_transports", "relay_codecs"))
WARM_UP = 20


@dataclass
class Call:
    name: str
    children: list[Call] = field(default_factory=list)

    def count(self) -> int:
        return 1 + sum(child.count() for child in self.children)

    def depth(self) -> int:
        return 1 + max((child.depth() for child in self.children), default=0)

    def lines(self, indent: int = 0) -> list[str]:
        own = ["  " * indent + self.name]
        return own + [line for child in self.children for line in child.lines(indent + 1)]


class Recorder:
    """The trees of project calls entered from outside the project, in order."""

    def __init__(self) -> None:
        self.roots: list[Call] = []
        self._stack: list[Call] = []
        self._frames: list[FrameType] = []

    def __call__(self, frame: FrameType, event: str, _arg: object) -> None:
        if event == "call":
            if not frame.f_code.co_filename.startswith(PACKAGES):
                return
            call = Call(_qualified(frame))
            (self._stack[-1].children if self._stack else self.roots).append(call)
            self._stack.append(call)
            self._frames.append(frame)
        elif event == "return" and self._frames and self._frames[-1] is frame:
            self._frames.pop()
            self._stack.pop()


def _qualified(frame: FrameType) -> str:
    path = Path(frame.f_code.co_filename).relative_to(ROOT)
    return f"{path}:{frame.f_code.co_qualname}"


async def _follow_one_call(transport: str) -> Call:
    from relay_core import ActorContext, ListenConfig, Node, NodeConfig, Rpc

    async def echo(context: ActorContext) -> None:
        async for request in context:
            if isinstance(request, Rpc):
                request.respond(request.request)

    listen = {transport: ListenConfig("127.0.0.1", 0)}
    async with Node(NodeConfig(name="server", listen=listen)) as server, \
            Node(NodeConfig(name="client", listen=listen)) as client:
        server.spawn(echo, name="echo")
        ref = client.ref(server.address(transport) + "/echo")
        request = {"n": 1, "text": "hello"}
        for _ in range(WARM_UP):
            await ref.rpc(request, timeout=5)
        await asyncio.sleep(0.05)
        recorder = Recorder()
        sys.setprofile(recorder)
        try:
            await ref.rpc(request, timeout=5)
        finally:
            sys.setprofile(None)
    return Call("(one round trip)", recorder.roots)


async def _follow_one_message(transport: str) -> tuple[Call, Call]:
    from relay_core import ActorContext, ListenConfig, Node, NodeConfig

    arrived = asyncio.Queue[object]()

    async def collector(context: ActorContext) -> None:
        async for message in context:
            arrived.put_nowait(message)

    listen = {transport: ListenConfig("127.0.0.1", 0)}
    async with Node(NodeConfig(name="receiver", listen=listen)) as receiver, \
            Node(NodeConfig(name="sender", listen=listen)) as sender:
        receiver.spawn(collector, name="collector")
        ref = sender.ref(receiver.address(transport) + "/collector")
        message = {"n": 1, "text": "hello"}
        for _ in range(WARM_UP):
            await ref.send(message)
            await asyncio.wait_for(arrived.get(), 10)
        await asyncio.sleep(0.05)
        recorder = Recorder()
        sys.setprofile(recorder)
        try:
            await ref.send(message)
            await asyncio.wait_for(arrived.get(), 10)
        finally:
            sys.setprofile(None)
    arrival = next(index for index, root in enumerate(recorder.roots)
                   if root.name.startswith("relay_transports") and _reaches(root, "mailbox"))
    # ``ref.send`` hands back an awaitable, and awaiting it sends: two roots.
    send = Call("(the sender's program)", recorder.roots[:arrival])
    return send, recorder.roots[arrival]


def _reaches(call: Call, word: str) -> bool:
    return word in call.name.lower() or any(_reaches(child, word) for child in call.children)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--scenario", choices=("oneway", "rpc"), default="oneway")
    parser.add_argument("--show", action="store_true", help="print each path's call tree")
    args = parser.parse_args()
    if args.scenario == "rpc":
        trip = asyncio.run(_follow_one_call(args.transport))
        entered = sum(call.count() for call in trip.children)
        print(f"rpc      {entered:3} functions entered in one round trip")
        if args.show:
            print("\n".join("    " + line for call in trip.children for line in call.lines()))
        return 0
    send, receive = asyncio.run(_follow_one_message(args.transport))
    for title, root in (("send", send), ("receive", receive)):
        calls = [root] if title == "receive" else root.children
        entered = sum(call.count() for call in calls)
        chain = max(call.depth() for call in calls)
        print(f"{title:8} {entered:3} functions entered, longest chain {chain}")
        if args.show:
            print("\n".join("    " + line for call in calls for line in call.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
