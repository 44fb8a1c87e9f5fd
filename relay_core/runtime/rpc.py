"""The request side of an RPC as a handler sees it, and the ambient request id.

An :class:`Rpc` is what an actor receives for ``ref.rpc(...)``: the request,
its id, its deadline, and ``respond``/``fail`` to answer exactly once. Where
the answer goes (a local future or a reply frame) is the ``answer`` callback
given by whoever created it, so local and remote requests look the same.

``Rpc`` is interpreted in every build, so that ``help()`` shows it as written;
what the node's compiled code reads and changes per request lives in the
:class:`~relay_core.runtime.rpc_state.RpcState` it fronts.

The request id of the request being handled lives in a context variable
(relay_core.runtime.request_ids): :func:`current_request_id` reads it, and
:class:`RequestIdFilter` puts it on log records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ..errors import RpcCancelled
from .request_ids import CURRENT_REQUEST_ID, new_request_id
from .rpc_state import Answer, RpcState

__all__ = ["RequestIdFilter", "Rpc", "current_request_id", "new_request_id"]

Request = TypeVar("Request")
"""The type of an Rpc's request: ``object`` as it arrives; narrowed by ``isinstance``."""

def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return CURRENT_REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the ambient id or "-") to every record.

    Attach it to a handler and use ``%(request_id)s`` in the format string.
    A record that already carries ``request_id`` (passed with ``extra=``) keeps it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = CURRENT_REQUEST_ID.get() or "-"
        return True


class Rpc(Generic[Request]):
    """A request waiting for its answer.

    ``Rpc[T]`` is an Rpc whose ``request`` is a ``T``: what a handler has once it
    checked, for example with ``isinstance(msg.request, Greeting)``, and can hand
    on to a function that takes an ``Rpc[Greeting]``.

    ``deadline`` is the event-loop time (``loop.time()``) after which the caller
    no longer waits; ``time_left`` is what remains of it. ``cancelled`` turns
    true when the deadline passes or the caller cancels; an answer given after
    that is dropped. ``clock`` is the loop's ``time`` function when the creator
    has it at hand (asking asyncio for the running loop costs a system call);
    without it the running loop's is used.
    """

    __slots__ = ("_state", "request")

    def __init__(self, request: Request, request_id: str, deadline: float, answer: Answer,
                 traceparent: str = "", clock: Callable[[], float] | None = None,
                 origin: object = None) -> None:
        self.request = request
        # The request server makes its Rpcs without this method (see serving.py):
        # whatever is set here, it sets too.
        self._state = RpcState(request_id, deadline, answer, traceparent, clock, origin)

    @property
    def request_id(self) -> str:
        """The request's id, for tracing and logs (the caller's, or made up on arrival)."""
        return self._state.request_id

    @property
    def traceparent(self) -> str:
        """The W3C traceparent the request came with ("" for none)."""
        return self._state.traceparent

    @property
    def deadline(self) -> float:
        """The event-loop time after which the caller no longer waits."""
        return self._state.deadline

    def came_from(self, origin: object) -> bool:
        """Whether the request came over ``origin`` (the node's link it arrived on)."""
        return self._state.came_from(origin)

    def __repr__(self) -> str:
        return f"<Rpc request_id={self._state.request_id} request={self.request!r}>"

    @property
    def answered(self) -> bool:
        return self._state.answered

    @property
    def cancelled(self) -> bool:
        """True once the caller gave up: its deadline passed, or it cancelled."""
        return self._state.given_up()

    @property
    def time_left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        state = self._state
        return state.deadline - state.now()

    def respond(self, value: object) -> None:
        """Send ``value`` as the reply."""
        self._state.settle(value, None)

    def fail(self, error: BaseException) -> None:
        """Answer with an error: the caller gets ``RemoteError`` (remote) or ``error`` (local)."""
        self._state.settle(None, error)

    async def handle(self, work: Callable[[Request], Awaitable[object]]) -> None:
        """Run ``work(request)`` in its own task and answer with what it returns or raises.

        This is how a handler observes cancellation: when the deadline passes
        or the caller cancels, the task gets ``asyncio.CancelledError`` and no
        reply is sent. ``handle`` itself returns once the work has ended either
        way, so the actor's own loop carries on. If the actor is cancelled
        while waiting, the work is cancelled too.
        """
        state = self._state
        task = asyncio.ensure_future(work(self.request))
        state.add_cancel_callback(task.cancel)
        expiry = asyncio.get_running_loop().call_at(state.deadline, state.cancel)
        task.add_done_callback(lambda _: expiry.cancel())
        try:
            value = await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():  # the actor itself is being cancelled
                task.cancel()
                raise
            if not state.cancelled:
                state.settle(None, RpcCancelled("the handler's work was cancelled"))
            return
        except Exception as error:  # noqa: BLE001 - any failure of the work is the answer
            if not state.answered:
                state.settle(None, error)
            return
        if not state.answered:
            state.settle(value, None)

    def add_cancel_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` when the request is cancelled (at once if it already is)."""
        self._state.add_cancel_callback(callback)

    def cancel(self) -> None:
        """Mark the request given up by its caller (deadline passed or cancel received)."""
        self._state.cancel()
