"""Outbound links: what a node needs to send to one destination.

A :class:`PeerLink` holds the transport, the resolved destination, what the
link speaks and the frames waiting on it (an
:class:`~relay_core.protocol.outgoing.Outgoing`), the calls made through it,
and the peer's counters. The :class:`LinkTable` keeps them, bounded: links made
only to answer requests (whose sources anyone can forge) are evicted oldest
first; links to configured peers and to refs the program made are kept.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from ..config.address import Address
from ..errors import PeerUnreachable
from ..interfaces import HostPort, Transport
from ..observe.stats import Counters
from ..protocol.outgoing import Outgoing

__all__ = ["LinkKey", "LinkTable", "PeerLink"]

LinkKey = tuple[str, str, int]
"""(scheme, host, port) as the program or the packet source named it."""


class PeerLink:
    __slots__ = (
        "calls",
        "carries_for",
        "counters",
        "destination",
        "dirty",
        "error",
        "fallback",
        "full",
        "label",
        "next_call_id",
        "out",
        "pinned",
        "preparing",
        "send_packet",
        "transport",
        "unreachable",
        "unreachable_until",
    )

    def __init__(self, *, transport: Transport, label: str, out: Outgoing, counters: Counters,
                 pinned: bool) -> None:
        self.transport = transport
        self.send_packet: Callable[[HostPort, bytes], asyncio.Future[None] | None] = (
            transport.send)
        """The transport's ``send``."""
        self.full: asyncio.Future[None] | None = None
        """What the transport's ``send`` last handed back: while it is pending, the
        destination's queue is full, awaited sends wait and ``try_send`` raises."""
        self.preparing: asyncio.Future[None] | None = None
        """The task preparing the destination, until it is prepared or has failed."""
        self.label = label
        """Peer name from the config, or the peer's node URL."""
        self.out = out
        """What this link speaks, and its queued frames: messages in, packets out."""
        self.counters = counters
        self.fallback: tuple[Address, str] | None = None
        """A stream transport address (and the peer name) for frames too big for this link."""
        self.destination: HostPort | None = None
        """None until the transport has resolved and prepared it."""
        self.error: BaseException | None = None
        """Why the destination could not be prepared, if it could not."""
        self.dirty = False
        """True while the link waits in the outbox's flush list."""
        self.pinned = pinned
        """Kept in the table for good (configured peer or a ref the program holds)."""
        self.next_call_id = int.from_bytes(os.urandom(8), "big") >> 2 | 1
        """The id of this link's next call: counts up from a random 62-bit start, so that
        nobody who has not seen this link's requests can name a call waiting on it (a
        peer that sees its own calls' ids learns nothing of another link's)."""
        self.carries_for: list[PeerLink] | None = None
        """The links whose messages too large for them this link carries (it is their
        fallback): replies to their calls come back over this link."""
        self.calls: set[int] | None = None
        """Ids of the calls made through this link that wait for their reply; made at the
        first call (most links never make one: an empty set is 216 bytes)."""
        self.unreachable: PeerUnreachable | None = None
        """Why the destination was last found unreachable, until a send finds the
        hold over (see ``unreachable_until``)."""
        self.unreachable_until = 0.0
        """Event-loop time until which sends and calls on this link raise ``unreachable``."""


class LinkTable:
    def __init__(self, max_transient: int) -> None:
        self._links: dict[LinkKey, PeerLink] = {}
        self._max_transient = max_transient
        self._transient = 0
        # The link find() found last, and its key: packets come in runs from one source,
        # and each brings its address as new strings, which a dict lookup would hash.
        self._found: PeerLink | None = None
        self._found_scheme = ""
        self._found_host = ""
        self._found_port = -1

    def get(self, key: LinkKey) -> PeerLink | None:
        return self._links.get(key)

    def find(self, scheme: str, host: str, port: int) -> PeerLink | None:
        """``get((scheme, host, port))``, answered without a lookup when asked twice in a row."""
        if port == self._found_port and host == self._found_host and scheme == self._found_scheme:
            return self._found
        link = self._links.get((scheme, host, port))
        if link is not None:
            self._found = link
            self._found_scheme, self._found_host, self._found_port = scheme, host, port
        return link

    def _forget_found(self) -> None:
        self._found = None
        self._found_port = -1

    def add(self, key: LinkKey, link: PeerLink) -> None:
        self._forget_found()
        if not link.pinned:
            if self._transient >= self._max_transient:
                self._evict_one()
            self._transient += 1
        self._links[key] = link

    def pin(self, link: PeerLink) -> None:
        if not link.pinned:
            link.pinned = True
            self._transient -= 1

    def discard(self, key: LinkKey) -> None:
        self._forget_found()
        link = self._links.pop(key, None)
        if link is not None and not link.pinned:
            self._transient -= 1

    def values(self) -> list[PeerLink]:
        return list(self._links.values())

    def _evict_one(self) -> None:
        for key, link in self._links.items():
            if not link.pinned and not link.dirty:
                self.discard(key)
                return
