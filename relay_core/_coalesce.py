"""Coalescing: the frames waiting for one destination, grouped into packets.

The node adds each encoded frame as it is sent and drains once per event-loop
turn, so many small messages share one datagram. The rules kept here:

- frames leave in the order they were added;
- a group's packet (header plus frames) fits ``batch_size``, except that a frame
  too big for ``batch_size`` travels alone;
- no packet passes ``max_packet_size``: a frame that could not fit even alone is
  refused when added, so the caller learns at once.
"""

from __future__ import annotations

from ._wire import PACKET_HEADER_SIZE
from .errors import ConfigError, MessageTooLarge

__all__ = ["Coalescer"]


class Coalescer:
    """Frames waiting for one destination, grouped into packets."""

    __slots__ = ("_batch_size", "_current", "_groups", "_max_packet_size", "_used",
                 "queued_bytes")

    def __init__(self, batch_size: int, max_packet_size: int) -> None:
        if not PACKET_HEADER_SIZE < batch_size <= max_packet_size:
            raise ConfigError(
                f"batch_size {batch_size} must be above the {PACKET_HEADER_SIZE}-byte packet "
                f"header and at most max_packet_size {max_packet_size}"
            )
        self._batch_size = batch_size
        self._max_packet_size = max_packet_size
        self._groups: list[list[bytes]] = []
        self._current: list[bytes] = []
        self._used = PACKET_HEADER_SIZE  # bytes the current group's packet would take
        self.queued_bytes = 0
        """Bytes of the frames waiting, all groups together."""

    def add(self, frame: bytes) -> bool:
        """Queue one encoded frame; raise MessageTooLarge if no packet could carry it.

        Return True when a packet is complete (see :meth:`take_full`).
        """
        size = len(frame)
        if PACKET_HEADER_SIZE + size > self._max_packet_size:
            hint = "a frame and the packet header must fit the transport's packet size"
            raise MessageTooLarge(PACKET_HEADER_SIZE + size, self._max_packet_size, hint)
        if self._current and self._used + size > self._batch_size:
            self._groups.append(self._current)
            self._current = []
            self._used = PACKET_HEADER_SIZE
        self._current.append(frame)
        self._used += size
        self.queued_bytes += size
        return bool(self._groups)

    def takes_alone(self, frame: bytes) -> bool:
        """Tell whether nothing waits and ``frame`` fits a packet by itself: a sender
        may then make its packet at once, as :meth:`add` and :meth:`drain` would."""
        return (not self._current and not self._groups
                and PACKET_HEADER_SIZE + len(frame) <= self._max_packet_size)

    def take_full(self) -> list[list[bytes]]:
        """Return the complete packets' frames and forget them; the filling one stays."""
        groups = self._groups
        self._groups = []
        self.queued_bytes -= sum(len(frame) for group in groups for frame in group)
        return groups

    def __bool__(self) -> bool:
        return bool(self._current)

    def drain(self) -> list[list[bytes]]:
        """Return every waiting frame, grouped into packets in order, and forget them."""
        if self._current:
            self._groups.append(self._current)
        groups = self._groups
        self._groups = []
        self._current = []
        self._used = PACKET_HEADER_SIZE
        self.queued_bytes = 0
        return groups
