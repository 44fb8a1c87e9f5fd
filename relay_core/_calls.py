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
        return future is not None and not future.done()

    def take(self, call_id: int) -> asyncio.Future[object] | None:
        """The future still waiting for this reply, or None for a late or unknown reply."""
        future = self._futures.pop(call_id, None)
        return None if future is None or future.done() else future

    def fail_all(self, error: BaseException) -> None:
        for future in self._futures.values():
            if not future.done():
                future.set_exception(error)


class ActiveRequests:
    def __init__(self, replies: ReplyCache) -> None:
        self._active: dict[CallKey, tuple[Rpc, asyncio.TimerHandle]] = {}
        self.replies = replies

    def __contains__(self, key: CallKey) -> bool:
        return key in self._active

    def start(self, key: CallKey, rpc: Rpc) -> None:
        """Track ``rpc`` until answered; cancel it when its deadline passes."""
        timer = asyncio.get_running_loop().call_at(rpc.deadline, self.cancel, key)
        self._active[key] = (rpc, timer)

    def cancel(self, key: CallKey) -> None:
        """The caller gave up (cancel frame) or the deadline passed."""
        entry = self._active.pop(key, None)
        if entry is not None:
            entry[1].cancel()
            entry[0].cancel()

    def finish(self, key: CallKey, reply_frame: bytes) -> None:
        """The request was answered with ``reply_frame``."""
        entry = self._active.pop(key, None)
        if entry is not None:
            entry[1].cancel()
        self.replies.put(key, reply_frame)

    def cancel_all(self) -> None:
        for key in list(self._active):
            self.cancel(key)
