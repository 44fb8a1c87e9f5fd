"""Recently sent replies, so a retried request is answered without running twice.

Keyed by (caller incarnation, call id). Bounded both in entries and in bytes;
the least recently stored reply goes first. A retry that arrives after its
reply was evicted runs the handler again: the at-most-once promise for
retries holds within the cache's reach (docs/protocol.md says how far).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["ReplyCache"]

CallKey = tuple[int, int]


class ReplyCache:
    def __init__(self, max_entries: int = 1024, max_bytes: int = 4 * 1024 * 1024) -> None:
        self._entries: OrderedDict[CallKey, bytes] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: CallKey) -> bytes | None:
        return self._entries.get(key)

    def put(self, key: CallKey, frame: bytes) -> None:
        """Remember ``frame`` as the reply to ``key`` (a reply larger than the byte bound is not kept)."""
        size = len(frame)
        if size > self._max_bytes:
            return
        entries = self._entries
        old = entries.pop(key, None)
        if old is not None:
            size -= len(old)
        entries[key] = frame
        total = self._bytes + size
        while len(entries) > self._max_entries or total > self._max_bytes:
            total -= len(entries.popitem(last=False)[1])
        self._bytes = total
