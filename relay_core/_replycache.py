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
        if len(frame) > self._max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old)
        self._entries[key] = frame
        self._bytes += len(frame)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted)
