"""The state of a request being handled: the compiled part of an :class:`~relay_core.runtime.rpc.Rpc`.

The public ``Rpc`` stays interpreted, so that ``help()`` shows its docstrings and
signatures as written; it fronts a :class:`RpcState`, which holds what the node's
compiled code reads and changes per request (answered, given up, the deadline and
the clock, where the request came from, the cancel callbacks and where the answer
goes). The request server, the mailbox and the table of active requests work on
the state directly, so a request handled by a remote node costs no interpreted
call but the handler's own ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from ..errors import RpcError

__all__ = ["Answer", "RpcState"]

Answer = Callable[[object, BaseException | None], None]
"""Delivers ``(value, None)`` for a reply or ``(None, error)`` for a failure."""

_running_loop: Final = asyncio.get_running_loop


class RpcState:
    """Whether a request was answered or given up, and where its answer goes.

    ``deadline`` is the event-loop time after which the caller no longer waits;
    ``clock`` the loop's ``time`` where the creator has it at hand (asking
    asyncio for the running loop costs a system call), else None; ``origin``
    where the request came from (the node's link to the caller), since only a
    cancel from there cancels it. The answer goes to the ``answer`` callback, or,
    where that is None, to a subclass's own :meth:`deliver` (the request server's,
    which saves a closure per request).
    """

    def __init__(self, request_id: str, deadline: float, answer: Answer | None, traceparent: str,
                 clock: Callable[[], float] | None, origin: object) -> None:
        self.request_id = request_id
        self.deadline = deadline
        self.traceparent = traceparent
        """The W3C traceparent the request came with ("" for none)."""
        self.answered = False
        self.cancelled = False
        """Set once the caller gave up; :meth:`given_up` also checks the deadline."""
        self._answer = answer
        self._clock = clock
        # Made on first use: most requests never get a callback, and one list
        # per request showed in profiles.
        self._cancel_callbacks: list[Callable[[], object]] | None = None
        self._origin = origin

    def came_from(self, origin: object) -> bool:
        """Whether the request came over ``origin`` (the node's link it arrived on)."""
        return self._origin is origin

    def now(self) -> float:
        clock = self._clock
        return _running_loop().time() if clock is None else clock()

    def given_up(self) -> bool:
        """True once the caller gave up: its deadline passed, or it cancelled."""
        if not self.cancelled and self.now() >= self.deadline:
            self.cancel()
        return self.cancelled

    def add_cancel_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the request is cancelled (at once if it already is)."""
        if self.cancelled:
            callback()
        elif self._cancel_callbacks is None:
            self._cancel_callbacks = [callback]
        else:
            self._cancel_callbacks.append(callback)

    def cancel(self) -> None:
        """Mark the request given up by its caller (deadline passed or cancel received)."""
        if self.cancelled or self.answered:
            return
        self.cancelled = True
        callbacks, self._cancel_callbacks = self._cancel_callbacks, None
        for callback in callbacks or ():
            callback()

    def settle(self, value: object, error: BaseException | None) -> None:
        """Answer with ``value``, or with ``error`` if it is not None: once only, and
        delivered only while the caller still waits."""
        if self.answered:
            raise RpcError(f"request {self.request_id} was already answered")
        self.answered = True
        self._cancel_callbacks = None
        if not self.cancelled:
            self.deliver(value, error)

    def deliver(self, value: object, error: BaseException | None) -> None:
        """Send the answer where it goes: to the ``answer`` callback given at creation."""
        answer = self._answer
        if answer is not None:
            answer(value, error)
