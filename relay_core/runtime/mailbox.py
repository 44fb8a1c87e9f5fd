"""A bounded, single-consumer FIFO: an actor's mailbox, and the actor's side of it.

Invariants:
- at most ``capacity`` items are queued;
- an item put with a ``size`` of at least ``WEIGHED_FROM`` (a received message:
  ``size`` is what its payload decoded from) weighs that many bytes; the box holds
  at most ``max_bytes`` of them, and all the boxes that share a :class:`ByteBudget`
  hold at most its ``limit`` together, except that an empty box always takes one
  item, so that every actor makes progress. Smaller items, and items put without a
  size (sent within the process), weigh nothing: the count bounds them;
- ``put`` waits while full; ``put_nowait`` never waits and reports a full box;
- once closed, nothing new gets in (``ActorStopped``), but what is queued can
  still be taken until the box is empty; then ``get`` raises ``ActorStopped``.

asyncio.Queue would do most of this, but it has no close() before Python 3.13
and costs an exception per full put on the network path, where a full mailbox
is an ordinary, counted event.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import Any, Final

from ..errors import ActorStopped
from ..observe.tracing import enter_traceparent
from .request_ids import set_current_request_id
from .rpc import Rpc

__all__ = ["EMPTY", "ByteBudget", "Inbox", "Mailbox", "mailbox_of", "next_message"]

EMPTY: Final = object()
"""What :meth:`Mailbox.poll` returns when nothing is queued."""


UNBOUNDED: Final = 1 << 62
"""A byte bound no node reaches: what a box built without one has."""
WEIGHED_FROM: Final = 1024
"""Items smaller than this weigh nothing: ``capacity`` of them hold little, and
weighing each would cost the per-message path more than they hold."""


class _Weighed:
    """A queued item with its weight: only items that weigh something are wrapped, so
    a box of small messages pays one type check per item taken."""

    __slots__ = ("item", "size")

    def __init__(self, item: object, size: int) -> None:
        self.item = item
        self.size = size


class ByteBudget:
    """Bytes of received input held at once by everything that shares this budget (a
    node's mailboxes and parked backlogs), against one limit."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a byte budget must be >= 1, got {limit}")
        self.limit = limit
        self.used = 0


class Mailbox:
    __slots__ = ("_append", "_bytes", "_capacity", "_closed", "_getter", "_items", "_loop",
                 "_max_bytes", "_popleft", "_putters", "_shared")

    def __init__(self, capacity: int, *, max_bytes: int = UNBOUNDED,
                 shared: ByteBudget | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be >= 1, got {capacity}")
        if max_bytes < 1:
            raise ValueError(f"mailbox max_bytes must be >= 1, got {max_bytes}")
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._shared = shared if shared is not None else ByteBudget(UNBOUNDED)
        self._items: deque[object] = deque()
        self._append = self._items.append
        self._popleft = self._items.popleft
        self._getter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """Kept from the first wait: asyncio.get_running_loop() costs a system call."""
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    @property
    def bytes(self) -> int:
        """What the queued items weigh (see the module's invariants)."""
        return self._bytes

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, item: object, size: int = 0) -> bool:
        """Queue ``item``, weighing ``size`` bytes, if there is room; return False when the
        box is full (in items or in bytes) or the shared budget is spent."""
        if self._closed:
            raise ActorStopped("the actor has stopped and takes no more messages")
        if len(self._items) >= self._capacity:
            return False
        if size >= WEIGHED_FROM:
            if not self._charge(size):
                return False
            item = _Weighed(item, size)
        self._append(item)
        getter = self._getter
        if getter is not None:
            # Forgotten once woken, so the rest of a burst skips it, and not asked
            # whether it is done: only a waiter cancelled with its task can be.
            self._getter = None
            try:
                getter.set_result(None)
            except asyncio.InvalidStateError:
                pass
        return True

    async def put(self, item: object, size: int = 0) -> None:
        """Queue ``item``, weighing ``size`` bytes, waiting while the box is full."""
        while not self.put_nowait(item, size):
            waiter = asyncio.get_running_loop().create_future()
            self._putters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._putters:
                    self._putters.remove(waiter)

    async def get(self) -> object:
        """Take the oldest item, waiting for one; ``ActorStopped`` once closed and empty."""
        while not self._items:
            if self._closed:
                raise ActorStopped("the mailbox is closed")
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            self._getter = loop.create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        return self.take()

    def poll(self) -> object:
        """Take the oldest item now, or return ``EMPTY``: one call for the common case."""
        return self.take() if self._items else EMPTY

    def take(self) -> object:
        """Take the oldest item now; the box must not be empty (check ``len`` first)."""
        item = self._popleft()
        if type(item) is _Weighed:
            item = self._release(item)
        if self._putters:
            self._wake_one_putter()
        return item

    def close(self) -> None:
        """Refuse new items; wake everyone who waits so they can see it."""
        self._closed = True
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)
        for waiter in self._putters:
            if not waiter.done():
                waiter.set_result(None)

    def drain(self) -> list[object]:
        """Remove and return everything still queued."""
        items = [self._release(item) if type(item) is _Weighed else item
                 for item in self._items]
        self._items.clear()
        return items

    def _charge(self, size: int) -> bool:
        """Count ``size`` bytes in, if they fit (an empty box takes them whatever)."""
        shared = self._shared
        if self._items and (self._bytes + size > self._max_bytes
                            or shared.used + size > shared.limit):
            return False
        self._bytes += size
        shared.used += size
        return True

    def _release(self, weighed: _Weighed) -> object:
        """Count a weighed item's bytes out; return the item."""
        self._bytes -= weighed.size
        self._shared.used -= weighed.size
        return weighed.item

    def _wake_one_putter(self) -> None:
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def mailbox_of(mailboxes: Mapping[str, Mailbox], name: str) -> Mailbox | None:
    """The mailbox of the actor ``name``, or None.

    By subscript, not ``get``: the node's table is a read-only view, whose
    ``get`` is a method call.
    """
    try:
        return mailboxes[name]
    except KeyError:
        return None


class Inbox:
    """An actor's side of its mailbox: what ``async for message in ctx`` iterates.

    The actor context hands this out from ``__aiter__``; it remembers the message
    it handed over last.
    """

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.current: object = None
        """The message handed over last."""

    def __aiter__(self) -> Inbox:
        return self

    def __anext__(self) -> Coroutine[Any, Any, object]:
        # Not a coroutine itself: next_message's is handed back as is, one
        # coroutine per message, not two.
        return next_message(self)


async def next_message(inbox: Inbox) -> object:
    """The next message of ``inbox``; ``StopAsyncIteration`` once its mailbox has
    closed and emptied. A request whose caller gave up while it waited is skipped;
    a request's id and trace parent become the context's, a plain message's none."""
    mailbox = inbox.mailbox
    while True:
        message = mailbox.poll()
        if message is EMPTY:
            try:
                message = await mailbox.get()
            except ActorStopped:
                raise StopAsyncIteration from None
        if isinstance(message, Rpc):
            state = message._state
            if state.given_up():
                continue
            set_current_request_id(state.request_id)
            enter_traceparent(state.traceparent)
        else:
            set_current_request_id(None)
            enter_traceparent("")
        inbox.current = message
        return message
