"""When each call this node waits on gives up: deadlines without a clock or an event loop.

A call is armed with its timeout and the time it was made, and disarmed when
its reply comes or its caller gives up. The table says when it next has
something to do (:meth:`CallDeadlines.next_deadline`) and which calls are past
their deadline at a given time (:meth:`CallDeadlines.expire`), so a driver needs
one timer for all of them.

Deadlines are kept in lanes, one per timeout in use: calls made with the same
timeout expire in the order they were made, so a lane is an insertion-ordered
dict and its first entry is its next deadline (no heap, no per-call timer).
Past ``max_lanes`` distinct timeouts (a caller passing each call its own time
left), calls go to one heap.
"""

from __future__ import annotations

import heapq
from typing import Final

__all__ = ["LARGEST_CALL_ID", "MAX_LANES", "NO_DEADLINE", "CallDeadlines", "next_call_id"]

LARGEST_CALL_ID: Final = (1 << 62) - 1
"""The wire takes any non-zero u64; this node's own ids stay below 2**62, the range the
compiled build keeps unboxed."""
MAX_LANES: Final = 8
"""Distinct timeouts that get a lane each; calls with any other go to the heap."""
NO_DEADLINE: Final = float("inf")
"""What :meth:`CallDeadlines.next_deadline` says when no armed call will give up."""


def next_call_id(call_id: int) -> int:
    """The id after ``call_id`` in a link's run, wrapping within 1 to LARGEST_CALL_ID."""
    return call_id + 1 if 0 < call_id < LARGEST_CALL_ID else 1


class CallDeadlines:
    __slots__ = ("_heap", "_in_heap", "_lanes", "_max_lanes")

    def __init__(self, max_lanes: int = MAX_LANES) -> None:
        self._lanes: dict[float, dict[int, float]] = {}
        """By timeout: the deadline of each call armed with it, oldest first."""
        self._heap: list[tuple[float, int]] = []
        """(deadline, call id) of calls whose timeout found no lane; a disarmed call's
        entry stays until its deadline comes (each is bounded by its timeout)."""
        self._in_heap: set[int] = set()
        """The calls armed in the heap and not disarmed since."""
        self._max_lanes = max_lanes

    def arm(self, call_id: int, timeout: float, now: float) -> float:
        """Give call ``call_id`` up ``timeout`` seconds after ``now``; return that deadline
        (a driver whose timer is due later moves it there)."""
        deadline = now + timeout
        lane = self._lanes.get(timeout)
        if lane is None:
            if len(self._lanes) >= self._max_lanes:
                heapq.heappush(self._heap, (deadline, call_id))
                self._in_heap.add(call_id)
                return deadline
            lane = self._lanes[timeout] = {}
        lane[call_id] = deadline
        return deadline

    def disarm(self, call_id: int, timeout: float) -> None:
        """Call ``call_id``, armed with ``timeout``, no longer gives up: it is over.

        A lane left empty stays until :meth:`expire` finds it so: calls made one
        after another with one timeout then reuse it.
        """
        lane = self._lanes.get(timeout)
        if (lane is None or lane.pop(call_id, None) is None) and self._in_heap:
            self._in_heap.discard(call_id)

    def next_deadline(self) -> float:
        """When the next armed call gives up (``inf`` when none will)."""
        earliest = NO_DEADLINE
        for lane in self._lanes.values():
            for deadline in lane.values():
                earliest = min(earliest, deadline)
                break
        heap = self._heap
        while heap and heap[0][1] not in self._in_heap:
            heapq.heappop(heap)  # disarmed before its deadline came
        if heap and heap[0][0] < earliest:
            earliest = heap[0][0]
        return earliest

    def expire(self, now: float) -> list[int]:
        """The armed calls whose deadline is ``now`` or earlier, disarmed."""
        expired: list[int] = []
        for timeout in list(self._lanes):
            lane = self._lanes[timeout]
            due: list[int] = []
            for call_id, deadline in lane.items():
                if deadline > now:
                    break
                due.append(call_id)
            for call_id in due:
                del lane[call_id]
            if not lane:
                del self._lanes[timeout]
            expired += due
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, call_id = heapq.heappop(heap)
            if call_id in self._in_heap:
                self._in_heap.discard(call_id)
                expired.append(call_id)
        return expired

    def clear(self) -> None:
        """Disarm every call."""
        self._lanes.clear()
        self._heap.clear()
        self._in_heap.clear()
