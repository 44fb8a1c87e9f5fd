"""Outbound links: what a node needs to send to one destination.

A :class:`PeerLink` holds the transport, the resolved destination, the codec
and compressor chosen for that peer, the frames waiting to be coalesced, and
the peer's counters. The :class:`LinkTable` keeps them, bounded: links made
only to answer requests (whose sources anyone can forge) are evicted oldest
first; links to configured peers and to refs the program made are kept.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Final, TypeVar

from ..config.address import Address
from ..errors import MessageTooLarge, PeerUnreachable
from ..interfaces import Codec, Compressor, HostPort, Transport
from ..observe.stats import Counters
from ..protocol.coalesce import UNKNOWN_EXPANSION, Coalescer
from ..protocol.seal import TAG_SIZE, Sealer
from ..protocol.wire import MessageFrameEncoder, RequestFrameEncoder, frame_is_compressed

__all__ = ["LinkKey", "LinkTable", "PeerLink"]

MAX_FRAME_ENCODERS = 256

K = TypeVar("K")
T = TypeVar("T")

LinkKey = tuple[str, str, int]
"""(scheme, host, port) as the program or the packet source named it."""


class PeerLink:
    __slots__ = (
        "answered",
        "calls",
        "carries_for",
        "coalescer",
        "codec",
        "compressor",
        "counters",
        "destination",
        "dirty",
        "encode_value",
        "error",
        "fallback",
        "frame_encoders",
        "full",
        "heph",
        "label",
        "last_request_encoder",
        "next_call_id",
        "peer_incarnation",
        "pinned",
        "preparing",
        "sealer",
        "send_packet",
        "transport",
        "unreachable",
        "unreachable_until",
    )

    def __init__(
        self,
        *,
        transport: Transport,
        label: str,
        codec: Codec,
        compressor: Compressor | None,
        counters: Counters,
        pinned: bool,
        sealer: Sealer | None = None,
    ) -> None:
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
        self.codec = codec
        self.encode_value: Callable[[object], bytes] = codec.encode
        """The codec's ``encode``."""
        self.compressor = compressor
        self.counters = counters
        self.sealer = sealer
        """Seals this link's packets (a peer with keys), or None."""
        self.peer_incarnation = 0
        """The peer incarnation a sealed link seals for: learned by the handshake, from
        the request a reply link answers, or from the peer's own sealed packets; 0 until
        then (nothing is sealed for a link before it knows)."""
        self.answered = 0
        """The highest sequence number of this node's that an answer on this link named:
        an answer naming no later one is a replay, and ignored."""
        self.coalescer = self._coalescer(transport.batch_size, transport.max_packet_size)
        self.heph = False
        """True for a peer that speaks Heph's JSON datagrams instead of our packets."""
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
        self.frame_encoders: dict[tuple[str, str], MessageFrameEncoder] = {}
        """MESSAGE frame encoders by (target, compressor name): a frame costs one join."""
        self.last_request_encoder: RequestFrameEncoder | None = None
        """The REQUEST frame encoder this link used last (see :meth:`request_encoder`)."""
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

    def _coalescer(self, batch_size: int, max_packet_size: int) -> Coalescer:
        overhead = TAG_SIZE if self.sealer is not None else 0
        return Coalescer(min(batch_size, max_packet_size) - overhead, max_packet_size - overhead)

    def resize(self, batch_size: int, max_packet_size: int) -> int:
        """Use these packet limits from now on; return how many queued frames no longer fit."""
        waiting = [frame for group in self.coalescer.drain() for frame in group]
        self.coalescer = self._coalescer(batch_size, max_packet_size)
        dropped = 0
        for frame in waiting:
            try:
                # What a compressed one expands to was not kept: it goes alone.
                self.coalescer.add(frame, UNKNOWN_EXPANSION if frame_is_compressed(frame) else 0)
            except MessageTooLarge:
                dropped += 1
        return dropped

    def frame_encoder(self, target: str, compressor: str) -> MessageFrameEncoder:
        """The encoder for MESSAGE frames to ``target``, cached while there is room."""
        encoder = MessageFrameEncoder(self.codec.name, compressor, target)
        _remember(self.frame_encoders, (target, compressor), encoder)
        return encoder

    def request_encoder(self, target: str, compressor: str) -> RequestFrameEncoder:
        """The encoder for REQUEST frames to ``target``.

        Shared by every link in the process rather than kept per link: the
        same few targets are called through many links (a node calling the
        same actor on a thousand peers), and an encoder per link cost about
        900 bytes per peer in the idle-peer memory bench. The link keeps the
        last one it used, so calls to one actor skip the shared table.
        """
        last = self.last_request_encoder
        if last is not None and last.target == target and last.compressor == compressor:
            return last
        key = (self.codec.name, compressor, target)
        encoder = _REQUEST_ENCODERS.get(key)
        if encoder is None:
            encoder = RequestFrameEncoder(*key)
            _remember(_REQUEST_ENCODERS, key, encoder)
        self.last_request_encoder = encoder
        return encoder


_REQUEST_ENCODERS: Final[dict[tuple[str, ...], RequestFrameEncoder]] = {}
"""By (codec, compressor, target); the encoders are pure, so nodes may share them."""


def _remember(cache: dict[K, T], key: K, value: T) -> None:
    # Targets come from the program, but bound the caches all the same.
    if len(cache) < MAX_FRAME_ENCODERS:
        cache[key] = value


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
