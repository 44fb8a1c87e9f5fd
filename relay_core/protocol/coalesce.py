"""Coalescing: the frames waiting for one destination, grouped into packets.

The node adds each encoded frame as it is sent and drains once per event-loop
turn, so many small messages share one datagram. The rules kept here:

- frames leave in the order they were added;
- a group's packet (header plus frames) fits ``batch_size``, except that a frame
  too big for ``batch_size`` travels alone;
- no packet passes ``max_packet_size``: a frame that could not fit even alone is
  refused when added, so the caller learns at once;
- the compressed frames of a packet expand, together, to at most ``max_expanded``
  bytes (``MAX_GROUPED_EXPANSION`` unless told otherwise), except that a frame
  travels alone whatever it expands to. A receiver decompresses at most
  ``max(MAX_GROUPED_EXPANSION, its max_message_size)`` per packet, so honest
  traffic never meets that budget, whatever either side's ``max_message_size``.
"""

from __future__ import annotations

from typing import Final

from ..errors import ConfigError, MessageTooLarge
from .wire import PACKET_HEADER_SIZE

__all__ = ["MAX_GROUPED_EXPANSION", "UNKNOWN_EXPANSION", "Coalescer"]

MAX_GROUPED_EXPANSION: Final = 1024 * 1024
"""A wire rule (docs/protocol.md): the compressed frames that share a packet decompress
to at most this many bytes together; a frame alone may expand to ``max_message_size``."""

UNKNOWN_EXPANSION: Final = -1
"""What to pass as ``expanded`` for a compressed frame whose expansion is not known
here (a cached reply sent again): it travels alone."""


class Coalescer:
    """Frames waiting for one destination, grouped into packets."""

    __slots__ = ("_batch_size", "_current", "_expanded", "_groups", "_max_expanded",
                 "_max_packet_size", "_used", "queued_bytes")

    def __init__(self, batch_size: int, max_packet_size: int, *,
                 max_expanded: int = MAX_GROUPED_EXPANSION) -> None:
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
        self._max_expanded = max_expanded
        self._expanded = 0  # what the current group's frames expand to

    def add(self, frame: bytes, expanded: int = 0) -> bool:
        """Queue one encoded frame; raise MessageTooLarge if no packet could carry it.

        ``expanded`` is what a compressed frame's payload decompresses to (0 for an
        uncompressed frame, which the packet's size bounds; ``UNKNOWN_EXPANSION``: it
        goes alone).
        Return True when a packet is complete (see :meth:`take_full`).
        """
        size = len(frame)
        if PACKET_HEADER_SIZE + size > self._max_packet_size:
            hint = "a frame and the packet header must fit the transport's packet size"
            raise MessageTooLarge(PACKET_HEADER_SIZE + size, self._max_packet_size, hint)
        if expanded < 0:
            expanded = self._max_expanded
        if self._current and (self._used + size > self._batch_size or (
                expanded and self._expanded + expanded > self._max_expanded)):
            self._groups.append(self._current)
            self._current = []
            self._used = PACKET_HEADER_SIZE
            self._expanded = 0
        self._current.append(frame)
        self._used += size
        self.queued_bytes += size
        if expanded:
            self._expanded += expanded
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
        self._expanded = 0
        return groups
