"""What comes in from the transports: packets to mailboxes, futures and the request server.

:class:`Receiver` is the door every transport reports through (one
:class:`SchemeEvents` per transport, tagged with its scheme). A packet goes to
the endpoint (``protocol/endpoint.py``), which checks it and yields events; the
receiver acts on them: a message into its actor's mailbox, a request to the
:class:`~relay_core.runtime.serving.RequestServer`, a reply to the future of the
call it answers (only if it came from where the request went), a cancel to the
request it names. Nothing a peer sends raises out of ``packet_received``.

A message from a reliable transport that finds its mailbox full is not dropped:
its source is parked (see :mod:`relay_core.runtime.backlog`) with the rest of
the packet's events, and ``packet_received`` returns a future telling the
transport to stop reading from that source until the message, and what came
after it, have been delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

from ..config.address import endpoint_url
from ..config.security import SecurityPolicy
from ..errors import ActorStopped, MalformedFrame, RelayError
from ..interfaces import ConnectionDropReason, HostPort, UnsentReason
from ..observe.ratelog import RateLimitedLog
from ..observe.stats import Counters, StatsTable
from ..protocol.decoding import FAILED, count_internal_error
from ..protocol.endpoint import Endpoint, PacketEvents
from ..protocol.error_payload import error_from_payload
from ..protocol.events import (
    AnswerReceived,
    AnswerToSend,
    Arrival,
    CancelReceived,
    HephMessageReceived,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    SealedPacketAccepted,
)
from ..protocol.outgoing import SealedPackets
from ..protocol.replycache import call_key
from ..protocol.seal import messages_in_packet
from ..protocol.wire import Frame, FrameKind
from .backlog import Backlog, Stall, Stalled
from .calls import PendingCalls
from .heph_reply import HephReplies
from .linking import Links
from .links import LinkKey, PeerLink
from .mailbox import ByteBudget, mailbox_of
from .outbox import Outbox
from .plugin_set import PluginSet
from .serving import LocalActors, RequestServer

__all__ = ["MIN_BACKLOG_LIMIT", "Receiver", "SchemeEvents"]

logger = logging.getLogger("relay_core.node")

MIN_BACKLOG_LIMIT = 1024 * 1024
"""A parked source's backlog takes at least this many bytes: more than a stream
transport reads at once (256 KiB), so one that stops reading never meets the limit."""
_ERROR: Final = FrameKind.ERROR


class Receiver:
    def __init__(self, endpoint: Endpoint, links: Links, outbox: Outbox, plugins: PluginSet,
                 server: RequestServer, calls: PendingCalls, actors: LocalActors,
                 security: SecurityPolicy, buffered: ByteBudget, backlog_limit: int,
                 stats: StatsTable, log: RateLimitedLog, heph_replies: HephReplies) -> None:
        self._endpoint = endpoint
        self._links = links
        self._outbox = outbox
        self._plugins = plugins
        self._server = server
        self._calls = calls
        self._actors = actors
        self._mailboxes = actors.mailboxes
        self._security = security
        # Looked up once per packet: most schemes need no allowlist check.
        self._screened_schemes = security.screened_schemes
        self._buffered = buffered
        self._backlog_limit = backlog_limit
        self._stats = stats
        self._log = log
        self._heph_replies = heph_replies
        self._parked: dict[LinkKey, Backlog] = {}
        self.drains: set[asyncio.Task[None]] = set()
        """One task per parked source; cancelled at close rather than waited for (each
        waits on an actor, and the node's actors have stopped by then)."""

    # -- packets -------------------------------------------------------------

    def packet_received(self, scheme: str, data: bytes,
                        source: HostPort) -> asyncio.Future[None] | None:
        """Handle one packet; a future while ``source`` is parked (see the module docstring)."""
        if self._parked:
            backlog = self._parked.get((scheme, source[0], source[1]))
            if backlog is not None and not backlog.draining:
                return self._hold(backlog, scheme, data, source)
        self._outbox.sent_this_turn = False
        link = self._links.table.find(scheme, source[0], source[1])
        counters = link.counters if link is not None else self._links.counters_of(scheme, source)
        counters.packets_received += 1
        counters.bytes_received += len(data)
        if scheme in self._screened_schemes and not self._security.allows(scheme, source[0]):
            counters.not_allowed += 1
            self._log.warning("not_allowed", "dropped a packet from %s: source not allowed",
                              endpoint_url(scheme, source))
            return None
        arrival = self._endpoint.receive(data, PacketEvents(scheme, source, counters))
        if arrival is None:
            return None
        return self._handle(arrival, link)

    def _handle(self, arrival: PacketEvents,
                link: PeerLink | None) -> asyncio.Future[None] | None:
        """Act on a packet's events; park its source at a message a full mailbox cannot take.

        ``link``: the link to the packet's source, if there is one.
        """
        try:
            while (event := arrival.next()) is not None:
                if type(event) is MessageReceived:
                    self._deliver(event.message, event.size, event.target, arrival)
                elif type(event) is RequestReceived:
                    self._on_request(event.frame, arrival, link)
                elif type(event) is HephMessageReceived:
                    with_source = self._heph_replies.message(event.message, arrival.scheme,
                                                             arrival.source)
                    self._deliver(with_source, event.size, event.target, arrival)
                elif type(event) is ReplyReceived:
                    self._on_reply(event.frame, arrival, link)
                elif type(event) is CancelReceived:
                    self._on_cancel(event.call_id, arrival, link)
                elif type(event) is SealedPacketAccepted:
                    if link is not None and isinstance(link.out, SealedPackets):
                        link.out.peer_incarnation = event.incarnation
                elif type(event) is AnswerToSend:
                    self._links.send_handshake(self._plugins.transport(arrival.scheme),
                                               arrival.source, event.packet, arrival.counters)
                else:
                    assert isinstance(event, AnswerReceived)
                    self._links.on_answer(event.sender, event.answered, arrival.scheme,
                                          arrival.source)
        except Stalled as stalled:
            # ``arrival`` has stopped just past the stalled message: the rest of the
            # packet waits behind it.
            return self._park(arrival.scheme, arrival.source, Stall(stalled, arrival))
        return None

    def _deliver(self, message: object, size: int, target: str, arrival: Arrival) -> None:
        """Queue ``message``, weighing ``size`` bytes, for ``target``; raise Stalled for a
        full mailbox on a reliable transport (the source is then parked), else drop what
        cannot be queued."""
        mailbox = mailbox_of(self._mailboxes, target)
        if mailbox is None or mailbox.closed:
            if not self._actors.deliver_unrouted(
                    message, endpoint_url(arrival.scheme, arrival.source)):
                arrival.counters.unknown_actor += 1
                self._log.warning("unknown_actor", "dropped a message from %s for unknown actor "
                                  "%r", endpoint_url(arrival.scheme, arrival.source), target)
        elif not mailbox.put_nowait(message, size):
            if self._plugins.transport(arrival.scheme).reliable:
                raise Stalled(mailbox, message, size, target)
            arrival.counters.mailbox_full += 1
            self._log.warning("mailbox_full", "dropped a message from %s: mailbox of %r is full "
                              "(in messages or bytes), or the node holds max_buffered_bytes",
                              endpoint_url(arrival.scheme, arrival.source), target)

    def _on_request(self, frame: Frame, arrival: Arrival, link: PeerLink | None) -> None:
        reply_link = self._links.reply_link(arrival, link)
        key = call_key(arrival.incarnation, frame.call_id)
        server = self._server
        if server.is_retry(key, frame, reply_link, arrival):
            return
        request = self._endpoint.decode(frame, arrival)
        if request is FAILED:
            server.reject(reply_link, frame)
            return
        arrival.counters.messages_received += 1
        server.serve(reply_link, frame, key, request, arrival)

    def _on_cancel(self, call_id: int, arrival: Arrival, link: PeerLink | None) -> None:
        if link is None or link.counters is not arrival.counters:
            link = self._links.get((arrival.scheme, arrival.source[0], arrival.source[1]))
        if not self._server.active.cancel_from(call_key(arrival.incarnation, call_id), link):
            arrival.counters.forged_cancels += 1
            self._log.warning("forged_cancel", "a cancel for a request that came from elsewhere "
                              "came from %s; ignored", endpoint_url(arrival.scheme, arrival.source))

    def _on_reply(self, frame: Frame, arrival: Arrival, link: PeerLink | None) -> None:
        call_id = frame.call_id
        counters = arrival.counters
        if not self._links.call_made_through(arrival, link, call_id):
            if self._calls.is_waiting(call_id):
                counters.forged_replies += 1
                self._log.warning("forged_reply", "a reply to a call waiting on another link "
                                  "came from %s; dropped",
                                  endpoint_url(arrival.scheme, arrival.source))
            else:
                counters.late_replies += 1
            return
        future = self._calls.take(call_id)
        if future is None:
            counters.late_replies += 1
            return
        value = self._endpoint.decode(frame, arrival)
        try:
            if value is FAILED:
                future.set_exception(RelayError(
                    f"the reply from {endpoint_url(arrival.scheme, arrival.source)} could not "
                    "be decoded"))
            elif frame.kind is _ERROR:
                future.set_exception(error_from_payload(
                    value, endpoint_url(arrival.scheme, arrival.source)))
            else:
                future.set_result(value)
                counters.messages_received += 1
        except asyncio.InvalidStateError:  # its caller gave up, and has not closed the call yet
            counters.late_replies += 1

    # -- backpressure --------------------------------------------------------

    def _park(self, scheme: str, source: HostPort, stall: Stall) -> asyncio.Future[None]:
        """Make ``stall`` the source's next wait, parking the source if it is not yet."""
        key = (scheme, source[0], source[1])
        backlog = self._parked.get(key)
        if backlog is None:
            future = asyncio.get_running_loop().create_future()
            backlog = self._parked[key] = Backlog(future, self._backlog_limit, self._buffered)
            drain = asyncio.ensure_future(self._drain(key, source, backlog))
            self.drains.add(drain)
            drain.add_done_callback(self.drains.discard)
        backlog.stall = stall
        return backlog.future

    def _hold(self, backlog: Backlog, scheme: str, data: bytes,
              source: HostPort) -> asyncio.Future[None]:
        """Keep a packet from a parked source for later, unless past the backlog's guard."""
        if not backlog.hold(data):
            counters = self._links.counters_for(scheme, source)
            counters.packets_received += 1
            counters.bytes_received += len(data)
            counters.mailbox_full += self._endpoint.messages_in(data)
            self._log.warning("mailbox_full", "dropped a packet from %s: it kept sending while "
                              "a mailbox was full and its backlog is at the limit",
                              endpoint_url(scheme, source))
        return backlog.future

    async def _drain(self, key: LinkKey, source: HostPort, backlog: Backlog) -> None:
        """Deliver a parked source's stalled messages and what waits behind them, in order."""
        try:
            while (stall := backlog.stall) is not None:
                backlog.stall = None
                await self._put_stalled(stall.stalled, stall.arrival)
                self._resume(key[0], source, stall, backlog)
        except Exception as error:  # noqa: BLE001 - as in SchemeEvents.packet_received
            self.packet_failed(key[0], source, error)
        finally:
            del self._parked[key]
            backlog.let_go()  # only if a bug stopped the drain: counted as one above
            if not backlog.future.done():
                backlog.future.set_result(None)

    async def _put_stalled(self, stalled: Stalled, arrival: Arrival) -> None:
        """Wait for room for the message; if its actor stops, deliver it as to a stopped actor."""
        mailbox = stalled.mailbox
        while True:
            try:
                await mailbox.put(stalled.message, stalled.size)
                return
            except ActorStopped:
                pass
            try:
                self._deliver(stalled.message, stalled.size, stalled.target, arrival)
                return
            except Stalled as again:  # a restarted actor, with a new mailbox already full
                mailbox = again.mailbox

    def _resume(self, scheme: str, source: HostPort, stall: Stall, backlog: Backlog) -> None:
        """Hand on what waited behind ``stall``, until the next stall or an empty backlog."""
        backlog.draining = True
        try:
            stall.arrival.resend_left = 0  # its packet's budget went with that packet's turn
            self._handle(stall.arrival, self._links.table.find(scheme, source[0], source[1]))
            while backlog.stall is None and (packet := backlog.take()) is not None:
                self.packet_received(scheme, packet, source)
        finally:
            backlog.draining = False

    # -- what transports report ----------------------------------------------

    def packets_unsent(self, scheme: str, destination: HostPort, packets: Sequence[bytes],
                       reason: UnsentReason) -> None:
        """A transport dropped ``packets`` unsent: count their messages under ``reason``."""
        link = self._links.get((scheme, destination[0], destination[1]))
        counters = (link.counters if link is not None
                    else self._stats.peer(endpoint_url(scheme, destination)))
        if link is not None:
            lost = sum(link.out.messages_in(packet) for packet in packets)
        else:
            lost = sum(messages_in_packet(packet, None, 0) for packet in packets)
        if reason == "link_full":
            counters.link_full += lost
        elif reason == "closed_unsent":
            counters.closed_unsent += lost
        elif reason == "peer_unreachable":
            counters.peer_unreachable += lost
        else:
            counters.connection_lost += lost
        self._log.warning(reason, "%d messages to %s were never sent (%s)", lost,
                          endpoint_url(scheme, destination), reason.replace("_", " "))

    def input_malformed(self, scheme: str, source: HostPort, error: MalformedFrame) -> None:
        """A transport closed a connection whose bytes could not be cut into packets."""
        self._source_counters(scheme, source).malformed += 1
        self._log.warning("malformed", "closed the connection from %s: %s",
                          endpoint_url(scheme, source), error)

    def connection_dropped(self, scheme: str, source: HostPort,
                           reason: ConnectionDropReason) -> None:
        """A listener refused or closed a connection for a limit, or dropped a handshake to
        make room: count it (the transport logs it, rate-limited, with the limit's name)."""
        counters = self._source_counters(scheme, source)
        if reason == "connections_refused":
            counters.connections_refused += 1
        elif reason == "connections_timed_out":
            counters.connections_timed_out += 1
        elif reason == "connections_over_budget":
            counters.connections_over_budget += 1
        else:
            counters.handshakes_dropped += 1

    def send_failed(self, scheme: str, destination: HostPort | None, error: BaseException) -> None:
        if destination is None:
            self._stats.local.send_errors += 1
            self._log.warning("send_error", "send to %s failed: %s", f"{scheme} socket", error)
            return
        self._links.send_failed(scheme, destination, error,
                                self._links.counters_for(scheme, destination))

    def internal_error(self, counters: Counters, what: str, error: Exception) -> None:
        """Count and log what a plugin or the node's own code raised that it should not
        have, while handling ``what``."""
        count_internal_error(self._log, counters, what, error)

    def send_failure_failed(self, scheme: str, destination: HostPort | None,
                            error: Exception) -> None:
        """Count what :meth:`send_failed` raised while it handled a transport's report.

        Counted as the node's own: the report may be what was wrong, destination included.
        """
        self.internal_error(self._stats.local, f"a {scheme} send failure to {destination!r}",
                            error)

    def packet_failed(self, scheme: str, source: HostPort, error: Exception) -> None:
        """Count what :meth:`packet_received` raised: the rest of that packet is lost."""
        self.internal_error(self._links.counters_for(scheme, source),
                            f"a packet from {endpoint_url(scheme, source)}", error)

    def _source_counters(self, scheme: str, source: HostPort) -> Counters:
        link = self._links.get((scheme, source[0], source[1]))
        return (link.counters if link is not None
                else self._stats.peer(endpoint_url(scheme, source)))


class SchemeEvents:
    """The reports of one transport, tagged with its scheme."""

    __slots__ = ("_receiver", "_scheme")

    def __init__(self, receiver: Receiver, scheme: str) -> None:
        self._receiver = receiver
        self._scheme = scheme

    def packet_received(self, packet: bytes, source: HostPort) -> asyncio.Future[None] | None:
        # The one door into the node from every transport's read callback: whatever a
        # plugin or the node's own code raises stops here, counted, and the transport
        # (a udp socket, a tcp connection) goes on reading.
        try:
            return self._receiver.packet_received(self._scheme, packet, source)
        except Exception as error:  # noqa: BLE001 - a bug must not take a listener down
            self._receiver.packet_failed(self._scheme, source, error)
            return None

    def send_failed(self, destination: HostPort | None, error: BaseException) -> None:
        # Called from transports' callbacks and timers too: the same door rule holds.
        try:
            self._receiver.send_failed(self._scheme, destination, error)
        except Exception as failure:  # noqa: BLE001 - a bug must not take a transport down
            self._receiver.send_failure_failed(self._scheme, destination, failure)

    def packets_unsent(self, destination: HostPort, packets: Sequence[bytes],
                       reason: UnsentReason) -> None:
        self._receiver.packets_unsent(self._scheme, destination, packets, reason)

    def input_malformed(self, source: HostPort, error: MalformedFrame) -> None:
        self._receiver.input_malformed(self._scheme, source, error)

    def connection_dropped(self, source: HostPort, reason: ConnectionDropReason) -> None:
        self._receiver.connection_dropped(self._scheme, source, reason)
