"""The node's protocol driver: the endpoint, its links and its transports, run on asyncio.

A :class:`Dispatcher` puts together what a node needs to talk to others and
offers it to the node and its refs: sending (:meth:`Dispatcher.send`,
:meth:`Dispatcher.try_send`, :meth:`Dispatcher.call`), the links to peers
(:meth:`Dispatcher.link`), and the node's lifecycle. The parts, each in its
own module:

- the sans-IO :class:`~relay_core.protocol.endpoint.Endpoint`: packets in,
  events out; numbering and sealing packets out;
- :class:`~relay_core.runtime.plugin_set.PluginSet`: the node's transports,
  codecs and compressors;
- :class:`~relay_core.runtime.linking.Links`: the links to peers, their
  preparation (resolving, the sealed handshake) and what happens to them;
- :class:`~relay_core.runtime.outbox.Outbox`: frames to packets, and when
  they leave;
- :class:`~relay_core.runtime.receiving.Receiver`: the events of received
  packets to mailboxes, pending calls and the
  :class:`~relay_core.runtime.serving.RequestServer`, with backpressure on
  reliable transports.

Outbound, a message is encoded at once (so ``send`` raises for what the sender
can know), framed and queued on its link; inbound, nothing a peer sends raises
out of the receiver (see the modules of each part).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Callable
from typing import Final

from ..config.address import Address, endpoint_url, format_host_port
from ..config.heph_plan import HephPlan
from ..config.node_config import NodeConfig
from ..config.security import SecurityPolicy
from ..errors import ActorStopped, ConfigError, LinkBusy, RpcTimeout, TransportError
from ..faults.plan import FaultPlan
from ..interfaces import HostPort, Transport, TransportEvents
from ..observe.ratelog import RateLimitedLog
from ..observe.stats import NodeStats, StatsTable
from ..observe.tracing import outgoing_traceparent
from ..plugins.registry import PluginRegistry
from ..protocol.decoding import PayloadDecoder
from ..protocol.endpoint import Endpoint
from ..protocol.heph import encode_datagram
from ..protocol.wire import NO_DEADLINE
from .calls import PendingCalls
from .linking import Links, cannot_reach
from .links import PeerLink
from .mailbox import ByteBudget
from .outbox import Outbox
from .plugin_set import PluginSet
from .receiving import MIN_BACKLOG_LIMIT, Receiver, SchemeEvents
from .serving import LocalActors, RequestServer

__all__ = ["Dispatcher"]

logger = logging.getLogger("relay_core.node")

MAX_DEADLINE_MS: Final = NO_DEADLINE - 1


def _timed_out(link: PeerLink, target: str, timeout: float, request_id: str) -> RpcTimeout:
    return RpcTimeout(f"no reply from {link.label}/{target} within {timeout:g} s "
                      f"(request id {request_id})")


async def _resend_until_answered(send_request: Callable[[float], None],
                                 future: asyncio.Future[object], timeout: float, retries: int,
                                 timed_out: RpcTimeout) -> object:
    """Send the same request up to ``retries`` more times, an equal share of the time apart."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for attempt in range(retries + 1):
        remaining = deadline - loop.time()
        send_request(remaining)
        done, _ = await asyncio.wait({future}, timeout=remaining / (retries + 1 - attempt))
        if done:
            return future.result()
    raise timed_out


def _milliseconds(seconds: float) -> int:
    """A deadline for the wire: at least 1 ms (0 would mean already expired)."""
    return min(max(int(seconds * 1000), 1), MAX_DEADLINE_MS)


class Dispatcher:
    def __init__(self, config: NodeConfig, registry: PluginRegistry, actors: LocalActors) -> None:
        self._config = config
        self.incarnation = int.from_bytes(os.urandom(8), "big") or 1
        self.stats = StatsTable()
        self._log = RateLimitedLog(logger)
        security = SecurityPolicy(config)
        heph = HephPlan(config)
        self._faults = FaultPlan(config)
        self._plugins = PluginSet(config, registry, self._faults, heph, self._events_for)
        self._endpoint = Endpoint(
            self.incarnation,
            PayloadDecoder(self._plugins.codec, self._plugins.decompressor,
                           config.max_message_size, config.max_decompression_rate,
                           time.monotonic, self._log),
            duplicate_window=config.duplicate_window, max_senders=config.max_senders,
            max_message_size=config.max_message_size, opener=security.opener,
            reply_sealer=security.reply_sealer, sealed_schemes=security.sealed_schemes,
            heph_targets=heph.targets, clock=time.monotonic, log=self._log)
        self._calls = PendingCalls()
        self._links = Links(config, self._plugins, self._endpoint, self._calls, self.stats,
                            self._log, security=security, faults=self._faults, heph=heph)
        self._outbox = Outbox(self._endpoint, self._links, config.max_message_size, self._log)
        self._links.on_prepared = self._outbox.mark_dirty
        self._server = RequestServer(self._outbox, self._plugins, actors, config, self.stats,
                                     self._log)
        self.buffered = ByteBudget(config.max_buffered_bytes)
        """The node's received input held at once: every mailbox and parked backlog."""
        self._backlog_limit = max(4 * config.max_message_size, MIN_BACKLOG_LIMIT)
        self._receiver = Receiver(self._endpoint, self._links, self._outbox, self._plugins,
                                  self._server, self._calls, actors, security, self.buffered,
                                  self._backlog_limit, self.stats, self._log)
        self._bound: dict[str, list[HostPort]] = {}
        self._closed = False

    def _events_for(self, scheme: str) -> TransportEvents:
        return SchemeEvents(self._receiver, scheme)

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        for scheme, listen in self._config.listen.items():
            bound = await self.transport(scheme).listen(listen.host, listen.port)
            self._bound.setdefault(scheme, []).append(bound)
            logger.info("listening on %s://%s", scheme, format_host_port(*bound))

    async def close(self, grace: float = 5.0) -> None:
        """Deliver what was accepted for sending, fail pending calls, close every transport.

        Within ``grace`` seconds in all, destinations still being prepared get
        prepared and every transport flushes what it holds (a tcp connection
        still being made is waited for; quic waits for acknowledgements); what
        is left then is dropped by the transports' ``close`` and counted
        ``closed_unsent``, in messages.
        """
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        tasks = self._links.tasks
        if tasks:
            await asyncio.wait(set(tasks), timeout=grace)
        drains = self._receiver.drains
        for drain in drains:
            drain.cancel()
        await asyncio.gather(*drains, return_exceptions=True)
        self._outbox.flush()
        transports = self._plugins.transports.values()
        flushes = [asyncio.ensure_future(transport.flush()) for transport in transports]
        if flushes:
            _, late = await asyncio.wait(flushes, timeout=max(deadline - loop.time(), 0.0))
            for flush in late:
                flush.cancel()
            await asyncio.gather(*flushes, return_exceptions=True)
        self._closed = self._outbox.closed = True
        self._calls.fail_all(ActorStopped("the node closed before a reply came"))
        self._server.active.cancel_all()
        for task in list(tasks):
            task.cancel()
        for transport in transports:
            await transport.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def address(self, scheme: str) -> str:
        bound = self._bound.get(scheme)
        if not bound:
            listening = ", ".join(sorted(self._bound)) or "none"
            raise TransportError(
                f"this node is not listening on {scheme!r} (listening: {listening})"
            )
        return endpoint_url(scheme, bound[0])

    def snapshot(self) -> NodeStats:
        """Counters, fault adapter figures and the duplicate window's size, now."""
        drops = {scheme: transport.receive_drops()
                 for scheme, transport in self._plugins.transports.items()}
        return self.stats.snapshot(self._faults.stats(), self._endpoint.senders, drops)

    def transport(self, scheme: str) -> Transport:
        return self._plugins.transport(scheme)

    def make_configured_plugins(self) -> None:
        """Make every plugin the config names, now: a bad option stops the node before it
        starts, never at its first message."""
        self._plugins.make_configured()

    def packet_received(self, scheme: str, data: bytes,
                        source: HostPort) -> asyncio.Future[None] | None:
        """Handle one packet as if ``scheme``'s transport had read it from ``source``."""
        return self._receiver.packet_received(scheme, data, source)

    # -- sending -----------------------------------------------------------

    def link(self, address: Address, peer: str | None = None) -> PeerLink:
        """The link to ``address``, made (and its destination prepared) on first use."""
        return self._links.link(address, peer)

    def send(self, link: PeerLink, target: str, message: object) -> None:
        """Encode ``message`` for ``target`` and queue it; raise for what is known now."""
        if link.error is not None:
            raise cannot_reach(link)
        if link.unreachable is not None:
            self._refuse_while_unreachable(link)
        if link.heph:
            self._outbox.queue(link, encode_datagram(message))  # Heph names no actor: the peer routes
            link.counters.messages_sent += 1
            return
        payload, compressor, expanded = self._outbox.encode(link.encode_value, link.compressor, message)
        encoder = link.frame_encoders.get((target, compressor))
        if encoder is None:
            encoder = link.frame_encoder(target, compressor)
        self._outbox.queue(link, encoder.encode(payload), expanded)
        link.counters.messages_sent += 1

    async def send_when_awaited(self, link: PeerLink, target: str, message: object) -> None:
        """:meth:`send` as a coroutine: what an awaited ``RemoteRef.send`` runs.

        It waits while the link's destination is being prepared, and while its
        transport's queue to it is full (a stream transport's ``send`` handed
        back a future), the way a local send waits for room in a mailbox.
        """
        if link.preparing is not None or link.full is not None:
            await self._room_on(link)
        self.send(link, target, message)

    def try_send(self, link: PeerLink, target: str, message: object) -> None:
        """:meth:`send`, or ``LinkBusy`` while the link's transport queue is full."""
        full = link.full
        if full is not None:
            if not full.done():
                raise LinkBusy(f"the queue to {link.label} is full (its transport holds as much "
                               "as its queue_limit allows); await send() to wait for room")
            link.full = None
        if link.preparing is not None and link.coalescer.queued_bytes >= self._backlog_limit:
            raise LinkBusy(f"{link.label} is not ready yet (its address is being resolved, or "
                           "its sealed handshake waits for an answer) and as much waits for "
                           "it as a backlog holds; await send() to wait for room")
        self.send(link, target, message)

    async def _room_on(self, link: PeerLink) -> None:
        """Wait until ``link`` is prepared and its transport takes more (or the node closes)."""
        if link.preparing is not None:
            await asyncio.wait({link.preparing})
        # asyncio.wait rather than await: a cancelled sender must not cancel the
        # transport's future, which other senders wait on too.
        while (full := link.full) is not None and not self._closed:
            if full.done():
                if link.full is full:
                    link.full = None
                return
            await asyncio.wait({full})

    async def call(self, link: PeerLink, target: str, request: object, timeout: float,
                   request_id: str, retries: int = 0) -> object:
        """Send a request and wait for its reply, at most ``timeout`` seconds in all.

        With ``retries``, the same request (same call id) is sent again when a
        share of the time passes without a reply; the other node runs it once.
        """
        if link.error is not None:
            raise cannot_reach(link)
        if link.unreachable is not None:
            self._refuse_while_unreachable(link)
        if link.heph:
            raise ConfigError(f"{link.label} speaks heph-json, which has no requests: use send, "
                              "or the net-relay format for RPC")
        payload, compressor, expanded = self._outbox.encode(link.encode_value, link.compressor, request)
        encoder = link.request_encoder(target, compressor)
        # Retried calls keep time themselves; the others expire in their timeout's lane.
        lane = None if retries else timeout
        call_id, future = self._calls.reserve(link.next_call_id)
        link.next_call_id = call_id + 1
        calls = link.calls
        if calls is None:
            calls = link.calls = set()
        calls.add(call_id)  # so that the peer found unreachable fails this call at once
        traceparent = outgoing_traceparent()
        try:
            if retries:
                def send_request(seconds_left: float) -> None:
                    self._outbox.queue(link, encoder.encode(payload, call_id,
                                                            _milliseconds(seconds_left), request_id,
                                                    traceparent), expanded)
                    link.counters.messages_sent += 1

                return await _resend_until_answered(send_request, future, timeout, retries,
                                                    _timed_out(link, target, timeout, request_id))
            # The common case: one frame, one await. The deadline cancels the
            # future, not the task (cheaper than asyncio.timeout), so a
            # CancelledError while the task is not being cancelled is the deadline.
            try:
                self._outbox.queue(link, encoder.encode(payload, call_id, _milliseconds(timeout),
                                                request_id, traceparent), expanded)
                # Armed once the request has left: the round trip does not wait for it.
                self._calls.arm(call_id, future, lane)
                link.counters.messages_sent += 1
                return await future
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                raise _timed_out(link, target, timeout, request_id) from None
        finally:
            calls.discard(call_id)
            if self._calls.close(call_id, lane):
                self._outbox.send_cancel(link, call_id)

    def _refuse_while_unreachable(self, link: PeerLink) -> None:
        """Raise the link's PeerUnreachable while it holds; once it is over, forget it."""
        unreachable = link.unreachable
        assert unreachable is not None
        if asyncio.get_running_loop().time() < link.unreachable_until:
            raise unreachable.again()
        link.unreachable = None

    async def wait_sent(self, link: PeerLink, limit: float) -> None:
        """Wait until what was sent on ``link`` has left this node, at most ``limit`` seconds;
        raise PeerUnreachable if the peer was found unreachable meanwhile.

        For the command line's ``send``, which has nothing else to wait for: a transport
        says how many packets it still holds (connecting, in a TLS handshake).
        """
        try:
            async with asyncio.timeout(limit):
                while not self._left(link):
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise TransportError(errno.ETIMEDOUT, f"the message to {link.label} had not left "
                                 f"this node after {limit:g} s") from None
        # Two more turns of the loop, so that an error the kernel already holds (ICMP about
        # the datagram just sent) is read and reported before the caller decides.
        for _ in range(2):
            await asyncio.sleep(0)
        if link.unreachable is not None:
            raise link.unreachable.again()

    def _left(self, link: PeerLink) -> bool:
        if link.error is not None:
            raise cannot_reach(link)
        if link.unreachable is not None:
            raise link.unreachable.again()
        destination = link.destination
        return (destination is not None and not link.coalescer
                and link.transport.waiting(destination) == 0)

