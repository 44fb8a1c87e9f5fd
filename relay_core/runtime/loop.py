"""Which event loop net-relay's own entry points run on: the one place that chooses.

The choice is ``auto`` (uvloop when it is installed, else the stock asyncio
loop), ``asyncio`` or ``uvloop`` (which must be installed). It comes from the
caller, else from the ``NET_RELAY_LOOP`` environment variable, else ``auto``.
``auto`` takes uvloop because ``net-relay bench --loop`` measured it faster on
the rows that matter most: udp one-way (no loss where the stock loop lost a
tenth), the udp and tcp round trip p50 and requests in flight; only tcp one-way
was slower, by about a tenth (docs/performance.md has the figures).
uvloop is optional (``pip install 'net-relay[fast]'``) and is only ever
imported here. Loops are made through ``asyncio.Runner(loop_factory=...)``,
never by setting a global event loop policy, so choosing touches no state
outside the run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ..errors import ConfigError

__all__ = ["CHOICES", "ENVIRONMENT_VARIABLE", "choose", "loop_name", "run"]

T = TypeVar("T")

CHOICES = ("auto", "asyncio", "uvloop")
ENVIRONMENT_VARIABLE = "NET_RELAY_LOOP"
INSTALL_HINT = "pip install 'net-relay[fast]'"


def choose(loop: str | None = None) -> str:
    """The loop ``run(..., loop=loop)`` runs on: ``"uvloop"`` or ``"asyncio"``.

    None means: the ``NET_RELAY_LOOP`` environment variable (unset or empty:
    ``auto``). Raises ConfigError for a value outside :data:`CHOICES`, or for
    ``uvloop`` when uvloop is not installed.
    """
    where = "loop"
    if loop is None:
        where, loop = ENVIRONMENT_VARIABLE, os.environ.get(ENVIRONMENT_VARIABLE) or "auto"
    if loop not in CHOICES:
        raise ConfigError(f"{where} {loop!r} is not allowed: choose {', '.join(CHOICES)} "
                          "(auto: uvloop when installed, else the stock asyncio loop)")
    if loop == "asyncio":
        return "asyncio"
    installed = _uvloop_version() is not None
    if loop == "auto":
        return "uvloop" if installed else "asyncio"
    if not installed:
        raise ConfigError(f"{where} 'uvloop' needs uvloop, which is not installed: "
                          f"{INSTALL_HINT}, or choose auto or asyncio")
    return "uvloop"


def loop_name(loop: str | None = None) -> str:
    """What ``choose(loop)`` picks, for people: ``"uvloop 0.23.0"`` or ``"asyncio"``."""
    if choose(loop) == "uvloop":
        return f"uvloop {_uvloop_version()}"
    return "asyncio"


def run(main: Coroutine[Any, Any, T], *, loop: str | None = None) -> T:
    """Run ``main`` to completion like ``asyncio.run``, on the loop ``choose(loop)`` picks.

    The choice is checked before ``main`` starts; a bad one raises ConfigError
    and closes ``main`` unstarted, so no "never awaited" warning follows.
    """
    try:
        factory = _loop_factory(choose(loop))
    except ConfigError:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def _loop_factory(chosen: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """None for the stock loop: exactly what ``asyncio.run`` would make."""
    if chosen == "asyncio":
        return None
    import uvloop  # an optional dependency: choose() has seen that it imports

    return uvloop.new_event_loop


def _uvloop_version() -> str | None:
    """uvloop's version, or None when it cannot be imported."""
    try:
        import uvloop
    except ImportError:
        return None
    return str(getattr(uvloop, "__version__", "(version unknown)"))  # not in its stubs
