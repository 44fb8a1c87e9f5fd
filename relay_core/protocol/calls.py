"""The calls this node waits on, and when each gives up: without a clock or an event loop.

A call is known by its id from the moment its request is made until its caller
closes it. Its deadline is absolute, in the caller's clock; the table says when
it next has something to do (:meth:`CallTable.next_deadline`) and which calls
are past their deadline at a given time (:meth:`CallTable.expire`), so a driver
needs one timer for all of them.

Deadlines are kept in lanes, one per timeout in use: calls made with the same
timeout expire in the order they were made, so a lane is an insertion-ordered
dict and its first entry is its next deadline (no heap, no per-call timer).
Past ``max_lanes`` distinct timeouts (a caller passing each call its own time
left), calls go to one heap.
"""

from __future__ import annotations

import heapq
from typing import Final

__all__ = ["LARGEST_CALL_ID", "MAX_LANES", "NO_DEADLINE", "CallTable"]

LARGEST_CALL_ID: Final = (1 << 62) - 1
"""The wire takes any non-zero u64; this node's own ids stay below 2**62, the range the
compiled build keeps unboxed."""

MAX_LANES: Final = 8
"""Distinct timeouts that get a lane each; calls with any other go to the heap."""
NO_DEADLINE: Final = float("inf")
"""What :meth:`CallTable.next_deadline` says when no open call will give up."""


class CallTable:
    __slots__ = ("_heap", "_lanes", "_max_lanes", "_waiting")

    def __init__(self, max_lanes: int = MAX_LANES) -> None:
        self._waiting: set[int] = set()
        self._lanes: dict[float, dict[int, float]] = {}
        """By timeout: the deadline of each call made with it, oldest first."""
        self._heap: list[tuple[float, int]] = []
        """(deadline, call id) of calls whose timeout found no lane; a closed call's entry
        stays until its deadline comes (each is bounded by its timeout)."""
        self._max_lanes = max_lanes

    def __len__(self) -> int:
        return len(self._waiting)

    def open(self, call_id: int = 1) -> int:
        """Open call ``call_id``, or the next free id after it; return the id taken.

        Call ids come from each link's own random run (see ``PeerLink.next_call_id``);
        two runs meeting is all but impossible, and then the next free id is taken.
        """
        waiting = self._waiting
        while call_id in waiting or not 0 < call_id <= LARGEST_CALL_ID:
            call_id = call_id + 1 if 0 < call_id < LARGEST_CALL_ID else 1
        waiting.add(call_id)
        return call_id

    def is_waiting(self, call_id: int) -> bool:
        """True while call ``call_id`` is open."""
        return call_id in self._waiting

    def arm(self, call_id: int, timeout: float, now: float) -> float:
        """Give call ``call_id`` up ``timeout`` seconds after ``now``; return that deadline
        (a driver whose timer is due later moves it there)."""
        deadline = now + timeout
        lane = self._lanes.get(timeout)
        if lane is None:
            if len(self._lanes) >= self._max_lanes:
                heapq.heappush(self._heap, (deadline, call_id))
                return deadline
            lane = self._lanes[timeout] = {}
        lane[call_id] = deadline
        return deadline

    def close(self, call_id: int, timeout: float | None) -> bool:
        """Forget call ``call_id`` (armed with ``timeout``, or None if never armed);
        True if it was open."""
        if timeout is not None:
            lane = self._lanes.get(timeout)
            if lane is not None and lane.pop(call_id, None) is not None and not lane:
                del self._lanes[timeout]
        if call_id in self._waiting:
            self._waiting.discard(call_id)
            return True
        return False

    def next_deadline(self) -> float:
        """When the next open call gives up (``inf`` when none will)."""
        earliest = NO_DEADLINE
        for lane in self._lanes.values():
            for deadline in lane.values():
                earliest = min(earliest, deadline)
                break
        heap = self._heap
        while heap and heap[0][1] not in self._waiting:
            heapq.heappop(heap)  # closed before its deadline came
        if heap and heap[0][0] < earliest:
            earliest = heap[0][0]
        return earliest

    def expire(self, now: float) -> list[int]:
        """The open calls whose deadline is ``now`` or earlier, taken off their lanes
        (they stay open until their callers close them)."""
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
            if call_id in self._waiting:
                expired.append(call_id)
        return expired

    def clear(self) -> list[int]:
        """Close every call; return the ids that were open."""
        waiting = list(self._waiting)
        self._waiting.clear()
        self._lanes.clear()
        self._heap.clear()
        return waiting
