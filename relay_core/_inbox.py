"""What an actor's ``async for`` does per message: take it, enter its request's context.

Kept apart from :mod:`relay_core._actors` so that it can be compiled (see
``COMPILED_MODULES``): it runs once for every message an actor reads, while
``_actors`` checks what users pass to the public API, which must stay
interpreted to raise the library's own errors.
"""

from __future__ import annotations

from typing import Protocol

from ._errors import ActorStopped
from ._mailbox import EMPTY, Mailbox
from ._rpc import Rpc, set_current_request_id
from ._tracing import enter_traceparent

__all__ = ["Reader", "next_message"]


class Reader(Protocol):
    """Who reads: remembers the message it was handed last."""

    current: object


async def next_message(reader: Reader, mailbox: Mailbox) -> object:
    """The next message for ``reader``; ``StopAsyncIteration`` once the mailbox has
    closed and emptied. A request whose caller gave up while it waited is skipped;
    a request's id and trace parent become the context's, a plain message's none."""
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
        reader.current = message
        return message
