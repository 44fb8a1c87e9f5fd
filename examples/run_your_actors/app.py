"""Your own actors, hosted by ``net-relay run app:setup --config node.toml``.

``net-relay run`` imports this module (from the current directory), starts a
node from the config, calls ``setup`` with it, and serves until Ctrl-C or
SIGTERM, then closes the node gracefully. ``setup`` may be async, as here, or
a plain function.
"""

from __future__ import annotations

from relay_core import ActorContext, Node, Rpc


async def greeter(ctx: ActorContext) -> None:
    """Answers an RPC ``{"name": NAME}`` with ``{"hello": NAME}``."""
    async for message in ctx:
        if isinstance(message, Rpc):
            request = message.request
            name = request.get("name", "stranger") if isinstance(request, dict) else "stranger"
            message.respond({"hello": name})


async def tally(ctx: ActorContext) -> None:
    """Counts the plain messages it receives; an RPC gets the count."""
    received = 0
    async for message in ctx:
        if isinstance(message, Rpc):
            message.respond(received)
        else:
            received += 1


async def setup(node: Node) -> None:
    node.spawn(greeter, name="greeter")
    node.spawn(tally, name="tally")
