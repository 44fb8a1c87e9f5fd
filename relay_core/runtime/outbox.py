"""Packets on their way: when each link's frames leave, and what a send failure does.

A link's :class:`~relay_core.protocol.outgoing.Outgoing` turns frames into
packets; the outbox decides when. The first frame of a turn of the event loop,
with nothing waiting on its link (a request, a reply), leaves at once as a
packet of its own, if its link allows (a sealed link seals once per turn).
Frames queued after it in the same turn are coalesced into as few packets as
the destination takes; a packet leaves as soon as it is full, the rest when the
turn ends (one ``call_soon`` per turn, not per frame). A turn
begins with a received packet or a flush; a lone send schedules nothing, which
spares the loop a pass per request or reply. A frame too large for its link
goes over the link's fallback (a stream transport), if the config gives one.
"""

from __future__ import annotations

import asyncio

from ..errors import MessageTooLarge, RelayError
from ..observe.ratelog import RateLimitedLog
from ..protocol.wire import Frame, FrameKind, encode_frame
from .linking import Links, as_unreachable
from .links import PeerLink

__all__ = ["Outbox"]


class Outbox:
    def __init__(self, links: Links, log: RateLimitedLog) -> None:
        self._links = links
        self._log = log
        self._dirty: list[PeerLink] = []
        self._flush_handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """Kept from the first flush: asyncio.get_running_loop() costs a system call."""
        self.sent_this_turn = False
        """Whether a packet has left in this turn of the event loop (see the module
        docstring); a received packet begins a turn."""
        self.closed = False
        """Set when the node has closed: nothing more is sent (a late cancel, a reply)."""

    def queue(self, link: PeerLink, frame: bytes, expanded: int = 0) -> None:
        """Queue an encoded frame on ``link``; raise MessageTooLarge if it cannot go.

        ``expanded``: what a compressed frame's payload decompresses to (0 for one not
        compressed), so that no packet's frames expand past the receiver's budget
        (``UNKNOWN_EXPANSION``: a compressed frame that then travels alone).
        """
        out = link.out
        if not self.sent_this_turn and link.destination is not None:
            # The first frame of a turn, nothing waiting: its packet leaves now, as
            # mark_dirty would send it, without being grouped.
            packet = out.lone(frame)
            if packet is not None:
                self.sent_this_turn = True
                link.counters.frames_sent += 1
                self._send_packet(link, packet)
                return
        try:
            full = out.add(frame, expanded)
        except MessageTooLarge as exc:
            if link.fallback is not None:
                fallback = self._links.link(*link.fallback)
                carries_for = fallback.carries_for
                if carries_for is None:
                    carries_for = fallback.carries_for = []
                if link not in carries_for:
                    carries_for.append(link)
                self.queue(fallback, frame, expanded)
                return
            link.counters.oversize += 1
            hint = ("" if link.transport.reliable
                    else "use a stream transport (tcp:// or quic://) for large messages")
            raise MessageTooLarge(exc.size, exc.limit, hint) from None
        link.counters.frames_sent += 1
        if full and link.destination is not None:
            self._send_packets(link, out.full_packets())  # a packet is full: no waiting
        self.mark_dirty(link)

    def send_cancel(self, link: PeerLink, call_id: int) -> None:
        """Tell the peer the caller of ``call_id`` gave up (unless nothing can go)."""
        if not self.closed and link.error is None:
            self.queue(link, encode_frame(Frame(FrameKind.CANCEL, "", b"", call_id=call_id)))

    def mark_dirty(self, link: PeerLink) -> None:
        """Get the link's frames on their way: now if nothing has left in this turn, else
        at the turn's end."""
        if link.dirty or link.destination is None:
            return
        if not self.sent_this_turn:
            self.sent_this_turn = True
            self._send_packets(link, link.out.packets())
            return
        link.dirty = True
        self._dirty.append(link)
        if self._flush_handle is None:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what every link has waiting; a new turn begins."""
        self._flush_handle = None
        self.sent_this_turn = False
        dirty, self._dirty = self._dirty, []
        for link in dirty:
            link.dirty = False
            self._send_packets(link, link.out.packets())

    def _send_packets(self, link: PeerLink, packets: list[bytes]) -> None:
        for packet in packets:
            self._send_packet(link, packet)

    def _send_packet(self, link: PeerLink, packet: bytes) -> None:
        destination = link.destination
        assert destination is not None
        counters = link.counters
        try:
            full = link.send_packet(destination, packet)
        except RelayError as exc:
            counters.send_errors += 1
            self._log.warning("send_error", "send to %s failed: %s", link.label, exc)
            scheme = link.transport.scheme
            unreachable = as_unreachable(scheme, destination, exc)
            if unreachable is not None:
                self._links.peer_unreachable(scheme, destination, unreachable)
            return
        if full is not None:
            link.full = full
        counters.packets_sent += 1
        counters.bytes_sent += len(packet)
