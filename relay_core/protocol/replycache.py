"""Recently sent replies, so a retried request is answered without running twice, and
what a retry gets (:func:`check_retry`).

Keyed by caller incarnation and call id (:func:`call_key`); each reply is kept with
where it was sent (an opaque token: the node's link), because it may be sent again
only there (docs/protocol.md, section 6). Bounded both in entries and in bytes;
the least recently stored reply goes first. A retry that arrives after its
reply was evicted runs the handler again: the at-most-once promise for
retries holds within the cache's reach (docs/protocol.md says how far).
"""

from __future__ import annotations

from collections import deque
from enum import Enum

from .events import Arrival

__all__ = ["CallKey", "ReplyCache", "Retry", "call_key", "check_retry"]

CallKey = int
"""A request's caller incarnation and call id in one int: unique for every
request a node receives. Not a pair: the compiled build keeps a ``tuple[int, int]``
unboxed and builds a new tuple object each time one is hashed or stored, about
eight times per request."""


def call_key(incarnation: int, call_id: int) -> CallKey:
    """The key of the request ``call_id`` from the sender incarnation ``incarnation``."""
    return incarnation << 64 | call_id


class ReplyCache:
    def __init__(self, max_entries: int = 1024, max_bytes: int = 4 * 1024 * 1024) -> None:
        # A dict and the order its keys were stored in, rather than an OrderedDict:
        # a put is a store, an append and (once full) a popleft and a pop, with
        # no linked list to keep beside the dict on every answered request.
        self._entries: dict[CallKey, bytes] = {}
        self._sent_to: dict[CallKey, object] = {}
        self._order: deque[CallKey] = deque()
        self._remember_order = self._order.append
        self._forget_oldest = self._order.popleft
        self._pop_entry = self._entries.pop
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

    def sent_to(self, key: CallKey) -> object:
        """Where the reply to ``key`` was sent (None if it is not kept)."""
        return self._sent_to.get(key)

    def put(self, key: CallKey, frame: bytes, sent_to: object = None) -> None:
        """Remember ``frame`` as the reply to ``key``, sent to ``sent_to`` (a reply larger
        than the byte bound is not kept)."""
        size = len(frame)
        if size > self._max_bytes:
            return
        entries = self._entries
        if key in entries:  # a request answered again: rare, so forgotten the slow way
            self._bytes -= len(entries.pop(key))
            self._order.remove(key)
        entries[key] = frame
        self._sent_to[key] = sent_to
        self._remember_order(key)
        total = self._bytes + size
        while len(entries) > self._max_entries or total > self._max_bytes:
            oldest = self._forget_oldest()
            total -= len(self._pop_entry(oldest))
            del self._sent_to[oldest]
        self._bytes = total


class Retry(Enum):
    """What a request whose reply this node has sent already gets."""

    RESEND = "resend"
    """Answered: the cached reply goes again, to where it went."""
    NOT_RESENT = "not resent"
    """Answered, but the retry came from elsewhere than the reply went: nothing goes."""
    REFUSE = "refuse"
    """Answered, but the reply is larger than the retry may draw: a short error goes
    instead, if it fits (:meth:`Arrival.draw_resend`)."""


def check_retry(replies: ReplyCache, key: CallKey, origin: object, arrival: Arrival,
                reliable: bool) -> tuple[Retry, bytes] | None:
    """What the request ``key``, which came over ``origin`` in ``arrival``, gets if it was
    answered: the verdict, and the cached reply (for :attr:`Retry.RESEND` and
    :attr:`Retry.REFUSE`; empty otherwise). None if it was not answered, or its reply is
    forgotten: the handler runs.

    A reply goes again only to where it went. To a plain datagram it goes only within
    the packet's resend budget, as the source of one can be forged and the retry
    would then amplify an attack. A retry that came over a ``reliable`` transport (a
    stream's peer answered its handshake from its address) or sealed (authenticated;
    a replay of it is a duplicate) cannot be forged, and gets the reply whatever its
    size. A retry is counted as a duplicate; one that
    gets nothing or a refusal as ``replies_not_resent`` too.
    """
    reply = replies.get(key)
    if reply is None:
        return None
    counters = arrival.counters
    counters.duplicates += 1
    if replies.sent_to(key) is not origin:
        counters.replies_not_resent += 1
        return Retry.NOT_RESENT, b""
    if reliable or arrival.key_id is not None or arrival.draw_resend(len(reply)):
        return Retry.RESEND, reply
    counters.replies_not_resent += 1
    return Retry.REFUSE, reply
