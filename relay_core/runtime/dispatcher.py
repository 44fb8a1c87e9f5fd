"""The node's protocol driver: the endpoint, its links and its transports, run on asyncio.

A :class:`Dispatcher` puts together what a node needs to talk to others, and
runs its lifecycle: it starts the listeners, and closes in order (what was
accepted for sending leaves first). The parts, each in its own module:

- the sans-IO :class:`~relay_core.protocol.endpoint.Endpoint`: packets in,
  events out; numbering and sealing packets out;
- :class:`~relay_core.runtime.plugin_set.PluginSet`: the node's transports,
  codecs and compressors;
- :class:`~relay_core.runtime.linking.Links`: the links to peers, their
  preparation (resolving, the sealed handshake) and what happens to them;
- :class:`~relay_core.runtime.sending.Sender`: what refs send and call through;
- :class:`~relay_core.runtime.outbox.Outbox`: frames to packets, and when
  they leave;
- :class:`~relay_core.runtime.receiving.Receiver`: the events of received
  packets to mailboxes, pending calls and the
  :class:`~relay_core.runtime.serving.RequestServer`, with backpressure on
  reliable transports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Final

from ..config.address import endpoint_url, format_host_port
from ..config.heph_plan import HephPlan
from ..config.node_config import NodeConfig
from ..config.security import SecurityPolicy
from ..errors import ActorStopped, TransportError
from ..faults.plan import FaultPlan
from ..interfaces import HostPort, Transport, TransportEvents
from ..observe.ratelog import RateLimitedLog
from ..observe.stats import NodeStats, StatsTable
from ..plugins.registry import PluginRegistry
from ..protocol.decoding import PayloadDecoder
from ..protocol.endpoint import Endpoint
from ..protocol.wire import NO_DEADLINE
from .calls import PendingCalls
from .heph_reply import HephReplies
from .linking import Links
from .mailbox import ByteBudget
from .outbox import Outbox
from .plugin_set import PluginSet
from .receiving import MIN_BACKLOG_LIMIT, Receiver, SchemeEvents
from .sending import Sender
from .serving import LocalActors, RequestServer

__all__ = ["Dispatcher"]

logger = logging.getLogger("relay_core.node")

MAX_DEADLINE_MS: Final = NO_DEADLINE - 1


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
            heph_routes=heph.routes, clock=time.monotonic, log=self._log)
        self._calls = PendingCalls()
        self._links = Links(config, self._plugins, self._endpoint, self._calls, self.stats,
                            self._log, security=security, faults=self._faults, heph=heph)
        self._outbox = Outbox(self._links, self._log)
        self._links.on_prepared = self._outbox.mark_dirty
        self._server = RequestServer(self._outbox, self._plugins, actors, config, self.stats,
                                     self._log)
        self.buffered = ByteBudget(config.max_buffered_bytes)
        """The node's received input held at once: every mailbox and parked backlog."""
        self._backlog_limit = max(4 * config.max_message_size, MIN_BACKLOG_LIMIT)
        self.sender = Sender(self._links, self._outbox, self._calls, self._backlog_limit)
        """What refs send and call through."""
        self._receiver = Receiver(self._endpoint, self._links, self._outbox, self._plugins,
                                  self._server, self._calls, actors, security, self.buffered,
                                  self._backlog_limit, self.stats, self._log,
                                  HephReplies(self.sender, self._links))
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
