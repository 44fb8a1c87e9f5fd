"""The future a full queue hands its senders, shared by the tcp and quic transports.

A queue at its limit hands every send the same future, made when the first
one must wait, and completes it once there is room again (or the queue is
gone), which lets all of them go on at once; the node's awaited sends wait on
it, sends that cannot wait ignore it.
"""

from __future__ import annotations

import asyncio


class HeldSenders:
    """The senders a full queue holds back: one future for all of them, or none."""

    def __init__(self) -> None:
        self.future: asyncio.Future[None] | None = None
        """Handed to senders while the queue is full; None while none is held back."""

    def hold(self) -> asyncio.Future[None]:
        """The future that senders wait on until :meth:`release`: the one handed out
        already, or a new one."""
        future = self.future
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self.future = future
        return future

    def release(self) -> None:
        """Let every sender held back go on (the queue has room, or is gone)."""
        future, self.future = self.future, None
        if future is not None and not future.done():
            future.set_result(None)
