"""Serving a node from the command line: ``net-relay node`` (the demo actors) and ``net-relay
run MODULE:FUNCTION`` (the user's own).

Both start a node from a config, set it up, print where it listens, and serve until SIGINT or
SIGTERM, then close it gracefully (``Node.close``: what it accepted is delivered within its
grace period). ``run`` imports the user's module the way uvicorn does: by name, with the
current directory first on the import path, so ``net-relay run app:setup`` finds ``./app.py``
as ``python -m`` would.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from relay_core.config.node_config import NodeConfig
from relay_core.errors import AppError
from relay_core.runtime.node import Node

__all__ = ["APP_FORMAT", "AppSetup", "load_app", "serve", "set_up_with"]

APP_FORMAT = "MODULE:FUNCTION (e.g. app:setup, or myproject.actors:setup)"

AppSetup = Callable[[Node], object]
"""What ``run`` calls with the started node: a plain or an ``async`` function."""

logger = logging.getLogger("relay_core.node")


def split_app(spec: str) -> tuple[str, str]:
    """``"pkg.module:function"`` as ``("pkg.module", "function")``; AppError if malformed."""
    module_name, colon, function_name = spec.partition(":")
    if not (colon and module_name and function_name) or ":" in function_name:
        raise AppError(f"{spec!r} is not {APP_FORMAT}")
    return module_name, function_name


def load_app(spec: str) -> AppSetup:
    """Import MODULE (the current directory first) and return its FUNCTION."""
    module_name, function_name = split_app(spec)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    # The user's code may raise anything at import; it is reported, not a traceback.
    except (Exception, SystemExit) as exc:  # noqa: BLE001
        raise AppError(f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}") \
            from None
    try:
        function: object = getattr(module, function_name)
    except AttributeError:
        raise AppError(f"module {module_name!r} has no attribute {function_name!r} "
                       f"(want {APP_FORMAT})") from None
    if not callable(function):
        raise AppError(f"{spec} is not a function taking the node: it is of type "
                       f"{type(function).__name__}")
    return function


def set_up_with(spec: str, function: AppSetup) -> Callable[[Node], Awaitable[None]]:
    """Set a node up with the user's function; whatever it raises becomes an AppError."""
    async def set_up(node: Node) -> None:
        try:
            result = function(node)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # noqa: BLE001 (the user's code: reported in one line)
            raise AppError(f"{spec} raised {type(exc).__name__}: {exc}") from None
    return set_up


async def serve(config: NodeConfig, set_up: Callable[[Node], Awaitable[None]],
                loop_description: str) -> int:
    """Start a node, set it up, say where it listens, serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Node(config) as node:
        await set_up(node)
        logger.info("running on the %s event loop", loop_description)
        for scheme in config.listen:
            print(f"node {node.name!r} listening on {node.address(scheme)}", flush=True)
        if node.metrics_address:
            print(f"node {node.name!r} serves metrics at {node.metrics_address}", flush=True)
        await stop.wait()
        logger.info("shutting down")
    return 0
