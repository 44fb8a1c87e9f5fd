"""Reading a ``udp`` socket when the loop says it is readable: the per-datagram loop.

Compiled by the build (relay_core._compiled), so the loop's own callback is
native code from the wakeup to ``deliver``; the transport's plugin module,
which pluggy marks, cannot be. Errors and the ICMP error queue stay with the
endpoint, which hands in what to call for them.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Final

__all__ = ["FULL_READS_BEFORE_GROWING", "READS_PER_WAKEUP", "DatagramReader"]

RECEIVE_SIZE: Final = 65535  # above any UDP payload, so no datagram is ever truncated
READS_PER_WAKEUP: Final = 128  # bounds one reader callback, so a flood cannot starve the loop
FULL_READS_BEFORE_GROWING: Final = 8  # wakeups in a row that find at least their budget waiting
_WOULD_BLOCK: Final = (BlockingIOError, InterruptedError)

Deliver = Callable[[bytes, tuple[str, int]], object]


class DatagramReader:
    """Reads the datagrams waiting on ``sock`` and hands each to ``deliver``.

    Reading until the socket is empty costs a recvfrom per wakeup that finds
    nothing, and its BlockingIOError: with one request or reply per wakeup it
    added a fifth to a round trip. So a wakeup reads at most a budget, and what
    it leaves is reported again by the selector at the next pass. The budget
    shrinks to the burst that emptied the socket and doubles once enough wakeups
    in a row have filled it, so one packet at a time meets an empty socket only
    every few wakeups, and a flood soon reads in bulk.
    """

    def __init__(
        self,
        sock: socket.socket,
        deliver: Deliver,
        on_nothing: Callable[[], object],
        on_error: Callable[[OSError], object],
    ) -> None:
        self.sock = sock
        self.read_budget = 1
        """Datagrams a wakeup reads at most."""
        self.full_reads = 0
        """Wakeups in a row that read their whole budget."""
        self._deliver = deliver
        self._v6 = sock.family == socket.AF_INET6
        self._on_nothing = on_nothing
        self._on_error = on_error

    def on_readable(self) -> None:
        recvfrom = self.sock.recvfrom
        deliver = self._deliver
        budget = self.read_budget
        for count in range(budget):
            try:
                packet, source = recvfrom(RECEIVE_SIZE)
            except _WOULD_BLOCK:
                if count == 0:  # woken with nothing to read: only the error queue can have
                    self._on_nothing()
                else:
                    self.read_budget = count
                    self.full_reads = 0
                return
            except OSError as exc:
                self._on_error(exc)
                continue
            # An IPv6 source is (host, port, flowinfo, scope id): keep the pair.
            deliver(packet, (source[0], source[1]) if self._v6 else source)
        self.full_reads += 1
        if self.full_reads >= FULL_READS_BEFORE_GROWING:
            self.read_budget = min(2 * budget, READS_PER_WAKEUP)
