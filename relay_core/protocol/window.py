"""The duplicate (anti-replay) window: drop packets a sender already delivered.

Like IPsec, DTLS and WireGuard, each sender incarnation gets a sliding window
of ``size`` sequence numbers ending at the highest number seen so far. The rules,
for a window whose highest number is ``h``:

- a number above ``h`` is accepted and slides the window up to it;
- a number in ``h - size + 1 .. h`` is accepted once, then is a duplicate;
- a number at or below ``h - size`` is too old to tell, so it is refused;
- 0 (and anything below it) is never a valid sequence number: too old.

The window is a ring of bits, a byte per eight numbers (WireGuard's layout):
sliding clears only the bytes the new numbers enter, where shifting one big
bitmap would rewrite all of it for every packet.

Memory is constant per sender, and :class:`DuplicateFilter` keeps at most
``max_senders`` windows, dropping the least recently used. An evicted sender
that comes back starts with a fresh window, so a replay of one of its packets
from before the eviction would then be accepted once more: the price of bounded
memory, visible through :attr:`DuplicateFilter.evictions`.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from typing import Final

from ..errors import ConfigError

__all__ = ["MIN_WINDOW_SIZE", "DuplicateFilter", "ReplayWindow", "Verdict"]

MIN_WINDOW_SIZE: Final = 64
_BITS_PER_BLOCK: Final = 8
_BLOCK_SHIFT: Final = 3
_BIT_MASK: Final = 7


class Verdict(enum.Enum):
    """What the window decided about one sequence number."""

    ACCEPTED = enum.auto()
    """First time seen: deliver it."""
    DUPLICATE = enum.auto()
    """Seen before, inside the window: drop it."""
    TOO_OLD = enum.auto()
    """Below the window (or not a valid number): drop it, it cannot be checked."""


class ReplayWindow:
    """The sequence numbers seen from one sender incarnation."""

    __slots__ = ("_blocks", "_highest", "_ring", "_size")

    def __init__(self, size: int = 4096) -> None:
        if size < MIN_WINDOW_SIZE:
            raise ConfigError(f"window size {size} is too small; it must be at least 64")
        self._size = size
        # ``size`` consecutive numbers touch at most one byte more than they fill.
        self._blocks = -(-size // _BITS_PER_BLOCK) + 1
        # Bit ``n % 8`` of byte ``n // 8 % blocks``: number n was accepted. A byte is
        # cleared as the highest number enters it, so the bits above the highest number
        # are always clear, and bits of a number that left the window are never read.
        self._ring = bytearray(self._blocks)
        self._highest = 0

    def check(self, sequence: int) -> Verdict:
        """Judge ``sequence`` and, when it is ACCEPTED, remember it."""
        highest = self._highest
        block = sequence >> _BLOCK_SHIFT
        bit = 1 << (sequence & _BIT_MASK)
        if sequence > highest:
            self._enter(highest >> _BLOCK_SHIFT, block)
            self._highest = sequence
            ring = self._ring  # _enter may have replaced it
            index = block % self._blocks
            ring[index] = ring[index] | bit
            return Verdict.ACCEPTED
        if sequence < 1 or highest - sequence >= self._size:
            return Verdict.TOO_OLD
        ring = self._ring
        index = block % self._blocks
        byte = ring[index]
        if byte & bit:
            return Verdict.DUPLICATE
        ring[index] = byte | bit
        return Verdict.ACCEPTED

    def _enter(self, current: int, new: int) -> None:
        """Clear the bytes of blocks ``current + 1 .. new`` as the window slides into them."""
        blocks = self._blocks
        if new - current >= blocks:
            self._ring = bytearray(blocks)
            return
        ring = self._ring
        for block in range(current + 1, new + 1):
            ring[block % blocks] = 0


class DuplicateFilter:
    """Replay windows for many senders, at most ``max_senders`` of them."""

    __slots__ = ("_evictions", "_latest", "_latest_incarnation", "_max_senders", "_window_size",
                 "_windows")

    def __init__(self, window_size: int = 4096, max_senders: int = 4096) -> None:
        if max_senders < 1:
            raise ConfigError(f"max_senders is {max_senders}; it must be at least 1")
        ReplayWindow(window_size)  # fail here, not at the first packet
        self._window_size = window_size
        self._max_senders = max_senders
        self._windows: OrderedDict[int, ReplayWindow] = OrderedDict()
        self._evictions = 0
        # The window of the sender heard last, which is already the most recent in
        # _windows: a run of packets from one sender skips the lookup and the reordering.
        self._latest: ReplayWindow | None = None
        self._latest_incarnation = 0

    def check(self, incarnation: int, sequence: int) -> Verdict:
        """Judge packet ``sequence`` of sender ``incarnation``; remember it if ACCEPTED."""
        window = self._latest
        if window is not None and incarnation == self._latest_incarnation:
            return window.check(sequence)
        window = self._windows.get(incarnation)
        if window is not None:
            self._windows.move_to_end(incarnation)
        elif sequence < 1:
            return Verdict.TOO_OLD  # an invalid number must not cost a known sender its window
        else:
            if len(self._windows) >= self._max_senders:
                self._windows.popitem(last=False)
                self._evictions += 1
            window = self._windows[incarnation] = ReplayWindow(self._window_size)
        self._latest, self._latest_incarnation = window, incarnation
        return window.check(sequence)

    @property
    def senders(self) -> int:
        """How many sender windows are held now (never above ``max_senders``)."""
        return len(self._windows)

    @property
    def evictions(self) -> int:
        """How many sender windows were dropped to make room, since creation."""
        return self._evictions
