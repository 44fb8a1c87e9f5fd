"""What an actor's ``async for`` does per message: take it, enter its request's context.

Kept apart from :mod:`relay_core.runtime.actors` so that it can be compiled (see
``COMPILED_MODULES``): it runs once for every message an actor reads, while
``_actors`` checks what users pass to the public API, which must stay
interpreted to raise the library's own errors.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from ..errors import ActorStopped
from ..observe.tracing import enter_traceparent
from .mailbox import EMPTY, Mailbox
from .rpc import Rpc, set_current_request_id

__all__ = ["Inbox", "next_message"]


class Inbox:
    """An actor's side of its mailbox: what ``async for message in ctx`` iterates.

    The actor context hands this out from ``__aiter__``, so each step of the loop
    calls this compiled ``__anext__`` instead of an interpreted method, and the
    message it hands over is remembered in a native attribute.
    """

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.current: object = None
        """The message handed over last."""

    def __aiter__(self) -> Inbox:
        return self

    def __anext__(self) -> Coroutine[Any, Any, object]:
        # Not a coroutine itself: the compiled one is handed back as is, one
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
            if message.cancelled:
                continue
            set_current_request_id(message.request_id)
            enter_traceparent(message.traceparent)
        else:
            set_current_request_id(None)
            enter_traceparent("")
        inbox.current = message
        return message
