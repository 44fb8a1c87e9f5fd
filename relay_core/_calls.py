"""Bookkeeping for RPCs, both ways.

:class:`PendingCalls` holds the requests this node sent: a call id each, and
the future its caller awaits. :class:`ActiveRequests` holds the requests this
node is handling: the Rpc, its deadline timer, and the replies recently sent,
so that a retry of a finished request is answered from the cache instead of
running the handler again.
"""

from __future__ import annotations

import asyncio

from ._replycache import ReplyCache
from ._rpc import Rpc

__all__ = ["ActiveRequests", "CallKey", "PendingCalls"]

CallKey = tuple[int, int]
"""(caller incarnation, call id): unique for every request a node receives."""


class PendingCalls:
    def __init__(self) -> None:
        self._futures: dict[int, asyncio.Future[object]] = {}
        self._next_call_id = 1

    def open(self) -> tuple[int, asyncio.Future[object]]:
        """A new call id and the future its reply will resolve."""
        call_id = self._next_call_id
        self._next_call_id += 1
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._futures[call_id] = future
        return call_id, future

    def close(self, call_id: int) -> bool:
        """Forget ``call_id``; True if its reply had not come (the caller gave up)."""
        future = self._futures.pop(call_id, None)
        # A caller cancelled while awaiting the future cancels the future with it.
        return future is not None and (not future.done() or future.cancelled())

    def take(self, call_id: int) -> asyncio.Future[object] | None:
        """The future still waiting for this reply, or None for a late or unknown reply."""
        future = self._futures.pop(call_id, None)
        return None if future is None or future.done() else future

    def fail_all(self, error: BaseException) -> None:
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)


class ActiveRequests:
    """Requests being handled. No timer per request: ``Rpc.cancelled`` compares its
    deadline with the clock, ``Rpc.handle`` times its own work, and a sweep once a
    second retires requests nobody answered, so the table cannot grow for ever."""

    SWEEP_INTERVAL = 1.0

    def __init__(self, replies: ReplyCache) -> None:
        self._active: dict[CallKey, Rpc] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self.replies = replies

    def __contains__(self, key: CallKey) -> bool:
        return key in self._active

    def __len__(self) -> int:
        return len(self._active)

    def start(self, key: CallKey, rpc: Rpc) -> None:
        """Track ``rpc`` until it is answered, cancelled or past its deadline."""
        self._active[key] = rpc
        if self._sweep is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self.SWEEP_INTERVAL, self._retire_expired)

    def cancel(self, key: CallKey) -> None:
        """The caller gave up (a cancel frame)."""
        rpc = self._active.pop(key, None)
        if rpc is not None:
            rpc.cancel()

    def finish(self, key: CallKey, reply_frame: bytes) -> None:
        """The request was answered with ``reply_frame``."""
        self._active.pop(key, None)
        self.replies.put(key, reply_frame)

    def cancel_all(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for key in list(self._active):
            self.cancel(key)

    def _retire_expired(self) -> None:
        self._sweep = None
        expired = [key for key, rpc in self._active.items() if rpc.cancelled]
        for key in expired:
            self.cancel(key)
        if self._active:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self.SWEEP_INTERVAL, self._retire_expired)
