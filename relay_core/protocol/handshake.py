"""The sealed handshake's timing and bounds, without I/O or a clock of its own.

A sealed sender learns its peer's incarnation before the first packet it seals
for it: it sends a hello, and again while none is answered, waiting longer each
time (:data:`HELLO_WAITS`); when the last wait passes unanswered the peer counts
as unreachable. docs/protocol.md section 9 describes the exchange.

A receiver answers hellos, and packets sealed for an incarnation of its own that
is gone, without keeping any state for them but this budget: any source can
send such packets (a forged source included), so each source draws at most
:data:`ANSWERS_PER_SOURCE` answers a second, and at most
:data:`MAX_ANSWERED_SOURCES` sources draw any in one second. An answer is never
larger than what it answers, so the budget bounds a reflection, it does not
have to stop an amplification.
"""

from __future__ import annotations

from typing import Final

__all__ = ["ANSWERS_PER_SOURCE", "HELLO_WAITS", "MAX_ANSWERED_SOURCES", "AnswerBudget",
           "HelloSchedule"]

HELLO_WAITS: Final = (0.1, 0.2, 0.4, 0.8, 1.6)
"""Seconds a sender waits for an answer after each hello it sends: five hellos, 3.1 s."""
ANSWERS_PER_SOURCE: Final = 8
MAX_ANSWERED_SOURCES: Final = 1024


class HelloSchedule:
    """When a sealed sender's hellos go, until one is answered or it gives up.

    The first hello is due at once; each next one when the wait after the one
    before has passed, counted from when that one actually went (a driver that
    wakes late sends one hello, not the ones it missed). Once the wait after the
    last hello has passed, the sender has given up. The driver asks :meth:`due`
    whenever it wakes and sleeps until :meth:`next_deadline` or the answer.
    """

    __slots__ = ("_next", "_waits", "packet", "sent")

    def __init__(self, packet: bytes, now: float,
                 waits: tuple[float, ...] = HELLO_WAITS) -> None:
        self.packet = packet
        self.sent = 0
        """How many hellos went."""
        self._waits = waits
        self._next = now

    def due(self, now: float) -> bytes | None:
        """The hello to send at ``now``, if one is due (then it counts as sent)."""
        if self.sent >= len(self._waits) or now < self._next:
            return None
        self._next = now + self._waits[self.sent]
        self.sent += 1
        return self.packet

    def next_deadline(self) -> float:
        """When the next hello is due, or, after the last one, when the sender gives up."""
        return self._next

    def gave_up(self, now: float) -> bool:
        """Whether every hello went and the wait after the last one has passed."""
        return self.sent >= len(self._waits) and now >= self._next


class AnswerBudget:
    """How many handshake answers each source may draw in the current second."""

    __slots__ = ("_drawn", "_max_sources", "_per_source", "_second")

    def __init__(self, per_source: int = ANSWERS_PER_SOURCE,
                 max_sources: int = MAX_ANSWERED_SOURCES) -> None:
        self._per_source = per_source
        self._max_sources = max_sources
        self._second = -1
        self._drawn: dict[object, int] = {}

    @property
    def sources(self) -> int:
        """How many sources drew an answer this second (never above ``max_sources``)."""
        return len(self._drawn)

    def allows(self, source: object, now: float) -> bool:
        """Draw one answer for ``source`` at time ``now`` (seconds); False once it has
        drawn its share this second, or when this second's table of sources is full."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._drawn.clear()
        drawn = self._drawn.get(source, 0)
        if drawn >= self._per_source or (not drawn and len(self._drawn) >= self._max_sources):
            return False
        self._drawn[source] = drawn + 1
        return True
