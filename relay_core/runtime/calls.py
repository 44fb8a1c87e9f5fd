"""Bookkeeping for RPCs, both ways.

:class:`PendingCalls` holds the requests this node sent: a call id each, and
the future its caller awaits. :class:`ActiveRequests` holds the requests this
node is handling: the Rpc, its deadline timer, and the replies recently sent,
so that a retry of a finished request is answered from the cache instead of
running the handler again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import ClassVar

from ..protocol.calls import LARGEST_CALL_ID, NO_DEADLINE, CallDeadlines, next_call_id
from ..protocol.replycache import CallKey, ReplyCache
from .rpc_state import RpcState

__all__ = ["ActiveRequests", "CallKey", "PendingCalls"]

class PendingCalls:
    """Calls waiting for their reply: the future each caller awaits, and one timer.

    When each call gives up is the sans-IO
    :class:`~relay_core.protocol.calls.CallDeadlines`'; this class keeps the futures
    and a single event-loop timer at the next deadline, which cancels the futures
    of the calls past theirs. (A timer per call cost more than the rest
    of a call's bookkeeping: every cancelled handle stays in the loop's heap
    until it is due.)
    """

    def __init__(self) -> None:
        self._deadlines = CallDeadlines()
        self._futures: dict[int, asyncio.Future[object]] = {}
        self._pop_future = self._futures.pop
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = NO_DEADLINE
        self._loop: asyncio.AbstractEventLoop | None = None
        """Kept from the first call: asyncio.get_running_loop() costs a system call."""

    def open(self, timeout: float | None,
             call_id: int = 1) -> tuple[int, asyncio.Future[object]]:
        """Call ``call_id`` (or the next free id after it) and the future its reply will
        resolve.

        The future is cancelled ``timeout`` seconds from now if it is still
        waiting; with None the caller keeps time itself.
        """
        call_id, future = self.reserve(call_id)
        self.arm(call_id, future, timeout)
        return call_id, future

    def reserve(self, call_id: int = 1) -> tuple[int, asyncio.Future[object]]:
        """:meth:`open` without the deadline, which :meth:`arm` sets.

        A caller arms the deadline once its request has left, so that the
        request leaves sooner; a reply found before then is still delivered.
        Call ids come from each link's own random run (see ``PeerLink.next_call_id``);
        two runs meeting is all but impossible, and then the next free id is taken.
        """
        futures = self._futures
        while call_id in futures or not 0 < call_id <= LARGEST_CALL_ID:
            call_id = next_call_id(call_id)
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        futures[call_id] = future
        return call_id, future

    def is_waiting(self, call_id: int) -> bool:
        """True while call ``call_id`` waits for its reply."""
        return call_id in self._futures

    def arm(self, call_id: int, future: asyncio.Future[object], timeout: float | None) -> None:
        """Cancel ``future`` ``timeout`` seconds from now if it still waits (None: never)."""
        if timeout is None:
            return
        loop = self._loop
        assert loop is not None  # set by the reserve() that made the future
        deadline = self._deadlines.arm(call_id, timeout, loop.time())
        if deadline < self._timer_at:
            self._wake_at(deadline)

    def close(self, call_id: int, timeout: float | None) -> bool:
        """Forget ``call_id``; True if its reply had not come (the caller gave up)."""
        if timeout is not None:
            self._deadlines.disarm(call_id, timeout)
        future = self._pop_future(call_id, None)
        # A caller cancelled while awaiting the future cancels the future with it.
        return future is not None and (not future.done() or future.cancelled())

    def take(self, call_id: int) -> asyncio.Future[object] | None:
        """The future of the call this reply answers, or None for an unknown reply or one
        that came after its caller closed the call.

        The future may be done already (its deadline passed, or its caller was
        cancelled, and the caller has not closed the call yet): setting its
        result then raises ``asyncio.InvalidStateError``, which the receiver
        takes for a late reply. Not asking first saves a method call per reply.
        """
        return self._pop_future(call_id, None)

    def fail(self, call_ids: Iterable[int], error: Callable[[], BaseException]) -> int:
        """Fail those of ``call_ids`` still waiting, each with its own ``error()``; return
        how many. Their callers close them, as after a reply."""
        failed = 0
        for call_id in call_ids:
            future = self._futures.get(call_id)
            if future is not None and not future.done():
                future.set_exception(error())
                failed += 1
        return failed

    def fail_all(self, error: BaseException) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = NO_DEADLINE
        self._deadlines.clear()
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)

    def _wake_at(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = self._loop
        assert loop is not None
        self._timer_at = deadline
        self._timer = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        """Cancel the futures of the calls whose deadline has come; wait for the next one."""
        self._timer = None
        self._timer_at = NO_DEADLINE
        loop = self._loop
        assert loop is not None  # set by the reserve() that armed the timer
        for call_id in self._deadlines.expire(loop.time()):
            future = self._futures.get(call_id)
            if future is not None:
                future.cancel()
        deadline = self._deadlines.next_deadline()
        if deadline != NO_DEADLINE:
            self._wake_at(deadline)


class ActiveRequests:
    """Requests being handled, each by its Rpc's compiled state. No timer per
    request: ``Rpc.cancelled`` compares its
    deadline with the clock, ``Rpc.handle`` times its own work, and a sweep once a
    second retires requests nobody answered. Every request's deadline is capped by
    the node (``max_request_deadline``), and the table holds at most ``max_entries``:
    a request past that cancels the oldest one (see :meth:`start`)."""

    SWEEP_INTERVAL: ClassVar[float] = 1.0

    def __init__(self, replies: ReplyCache, max_entries: int = 4096) -> None:
        self._active: dict[CallKey, RpcState] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._max_entries = max_entries
        self.replies = replies

    def __contains__(self, key: CallKey) -> bool:
        return key in self._active

    def __len__(self) -> int:
        return len(self._active)

    def start(self, key: CallKey, state: RpcState) -> bool:
        """Track the request whose Rpc's state is ``state`` until it is answered,
        cancelled or past its deadline; True if the oldest request had to be cancelled
        to make room for it.

        The oldest goes, rather than the newest being refused: a flood of requests
        nobody answers then ages out of the table instead of shutting honest callers
        out of it, and the oldest request is the one whose caller has most likely
        given up already (all deadlines are capped alike). Insertion order is age:
        the first key is the oldest.
        """
        active = self._active
        evicted = False
        if len(active) >= self._max_entries:
            oldest = active.pop(next(iter(active)))
            oldest.cancel()
            evicted = True
        active[key] = state
        if self._sweep is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self.SWEEP_INTERVAL, self._retire_expired)
        return evicted

    def cancel(self, key: CallKey) -> None:
        """Cancel the request ``key`` (refused before it reached a handler)."""
        state = self._active.pop(key, None)
        if state is not None:
            state.cancel()

    def cancel_from(self, key: CallKey, origin: object) -> bool:
        """The caller gave up (a cancel frame from ``origin``, the link it came over):
        cancel the request if it came from there too; False if it came from elsewhere."""
        state = self._active.get(key)
        if state is None:
            return True  # answered already, or never seen: nothing to cancel
        if not state.came_from(origin):
            return False
        del self._active[key]
        state.cancel()
        return True

    def finish(self, key: CallKey, reply_frame: bytes, sent_to: object) -> None:
        """The request was answered with ``reply_frame``, sent to ``sent_to`` (the link)."""
        self._active.pop(key, None)
        self.replies.put(key, reply_frame, sent_to)

    def cancel_all(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for key in list(self._active):
            self.cancel(key)

    def _retire_expired(self) -> None:
        self._sweep = None
        expired = [key for key, state in self._active.items() if state.given_up()]
        for key in expired:
            self.cancel(key)
        if self._active:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self.SWEEP_INTERVAL, self._retire_expired)
