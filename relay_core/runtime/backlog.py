"""What a node holds for a source it has stopped taking from: backpressure on reliable transports.

When a message from a reliable transport finds its actor's mailbox full, the
node does not drop it. It parks the source: the message waits for room, and the
rest of its packet and every later packet from that source wait behind it, in
the order they came. Meanwhile the transport is asked (through the backlog's
future) to stop reading that connection, so its own flow control slows the
sender.

Invariants:
- a source has at most one backlog and one stalled message at a time;
- what a backlog holds is handed on in arrival order, after the stalled message;
- a backlog holds packets the transport read before it stopped: at most
  ``limit`` bytes beyond the first held packet, as a guard against a transport
  that does not stop reading; and beyond its first packet only while the node's
  :class:`~relay_core.runtime.mailbox.ByteBudget` (shared with the mailboxes) has room.
  What it holds counts against that budget until handed on or let go.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from ..protocol.endpoint import PacketEvents
from .mailbox import ByteBudget, Mailbox

__all__ = ["Backlog", "Stall", "Stalled"]


class Stalled(Exception):
    """Raised while delivering a frame from a reliable source to a full mailbox.

    Control flow inside the receiver, never raised out of it (so not a
    ``RelayError``). An exception rather than a return value, so the common path (room in the
    mailbox) pays no check per frame: a ``try`` costs nothing until it raises.
    """

    def __init__(self, mailbox: Mailbox, message: object, size: int, target: str) -> None:
        super().__init__(f"the mailbox of {target!r} is full")
        self.mailbox = mailbox
        self.message = message
        self.size = size
        """What the message weighs in its mailbox (see :class:`Mailbox`)."""
        self.target = target


@dataclass(frozen=True, slots=True)
class Stall:
    """A message waiting for room, and the rest of the packet it came in."""

    stalled: Stalled
    arrival: PacketEvents
    """The packet it came in: how, what it may still draw, and its events after the
    stalled message, not yet handled."""


class Backlog:
    """The packets of one parked source, waiting behind its stall."""

    __slots__ = ("_limit", "_packets", "_shared", "_size", "draining", "future", "stall")

    def __init__(self, future: asyncio.Future[None], limit: int, shared: ByteBudget) -> None:
        self.future = future
        """Completes when the source is unparked: its transport may read again."""
        self.stall: Stall | None = None
        self.draining = False
        """True while the node hands on held packets (they must not be held again)."""
        self._packets: deque[bytes] = deque()
        self._size = 0
        self._limit = limit
        self._shared = shared

    def hold(self, packet: bytes) -> bool:
        """Keep ``packet`` for later; False (not kept) when the guard is reached."""
        size = len(packet)
        shared = self._shared
        if self._packets and (self._size + size > self._limit
                              or shared.used + size > shared.limit):
            return False
        self._packets.append(packet)
        self._size += size
        shared.used += size
        return True

    def take(self) -> bytes | None:
        """The oldest held packet, or None when none is left."""
        if not self._packets:
            return None
        packet = self._packets.popleft()
        self._size -= len(packet)
        self._shared.used -= len(packet)
        return packet

    def let_go(self) -> int:
        """Drop every held packet (their bytes go back to the node); return how many."""
        dropped = len(self._packets)
        self._packets.clear()
        self._shared.used -= self._size
        self._size = 0
        return dropped
