"""The duplicate (anti-replay) window: drop packets a sender already delivered.

Like IPsec, DTLS and WireGuard, each sender incarnation gets a sliding window
of ``size`` sequence numbers ending at the highest number seen so far, held as
one bitmap. The rules, for a window whose highest number is ``h``:

- a number above ``h`` is accepted and slides the window up to it;
- a number in ``h - size + 1 .. h`` is accepted once, then is a duplicate;
- a number at or below ``h - size`` is too old to tell, so it is refused;
- 0 (and anything below it) is never a valid sequence number: too old.

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

from ._errors import ConfigError

__all__ = ["MIN_WINDOW_SIZE", "DuplicateFilter", "ReplayWindow", "Verdict"]

MIN_WINDOW_SIZE: Final = 64


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

    __slots__ = ("_highest", "_mask", "_seen", "_size")

    def __init__(self, size: int = 4096) -> None:
        if size < MIN_WINDOW_SIZE:
            raise ConfigError(f"window size {size} is too small; it must be at least 64")
        self._size = size
        self._mask = (1 << size) - 1
        self._highest = 0
        # Bit i set: sequence number (highest - i) was accepted.
        self._seen = 0

    def check(self, sequence: int) -> Verdict:
        """Judge ``sequence`` and, when it is ACCEPTED, remember it."""
        shift = sequence - self._highest
        if shift > 0:
            self._seen = (self._seen << shift | 1) & self._mask if shift < self._size else 1
            self._highest = sequence
            return Verdict.ACCEPTED
        if sequence < 1 or -shift >= self._size:
            return Verdict.TOO_OLD
        bit = 1 << -shift
        if self._seen & bit:
            return Verdict.DUPLICATE
        self._seen |= bit
        return Verdict.ACCEPTED


class DuplicateFilter:
    """Replay windows for many senders, at most ``max_senders`` of them."""

    __slots__ = ("_evictions", "_max_senders", "_window_size", "_windows")

    def __init__(self, window_size: int = 4096, max_senders: int = 4096) -> None:
        if max_senders < 1:
            raise ConfigError(f"max_senders is {max_senders}; it must be at least 1")
        ReplayWindow(window_size)  # fail here, not at the first packet
        self._window_size = window_size
        self._max_senders = max_senders
        self._windows: OrderedDict[int, ReplayWindow] = OrderedDict()
        self._evictions = 0

    def check(self, incarnation: int, sequence: int) -> Verdict:
        """Judge packet ``sequence`` of sender ``incarnation``; remember it if ACCEPTED."""
        window = self._windows.get(incarnation)
        if window is not None:
            self._windows.move_to_end(incarnation)
            return window.check(sequence)
        if sequence < 1:
            return Verdict.TOO_OLD  # an invalid number must not cost a known sender its window
        if len(self._windows) >= self._max_senders:
            self._windows.popitem(last=False)
            self._evictions += 1
        window = self._windows[incarnation] = ReplayWindow(self._window_size)
        return window.check(sequence)

    @property
    def senders(self) -> int:
        """How many sender windows are held now (never above ``max_senders``)."""
        return len(self._windows)

    @property
    def evictions(self) -> int:
        """How many sender windows were dropped to make room, since creation."""
        return self._evictions
