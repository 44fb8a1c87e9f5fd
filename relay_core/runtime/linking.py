"""The node's links to its peers: made, prepared, found again, and told what happened to them.

A link is made the first time the program names an address (pinned: kept for
good) or the first time a request comes from a source no link goes to
(transient: evicted oldest first past ``MAX_TRANSIENT_LINKS``, since anyone can
forge a source). Preparing a link resolves its destination through the
transport and, for a sealed link, learns the peer's incarnation by the
handshake; frames queued meanwhile wait on the link and leave once it is ready.
A destination found unreachable fails the calls waiting on every link to it and
holds the error for the time the transport gave (see ``PeerUnreachable``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Final

from ..config.address import Address, endpoint_url, parse_address
from ..config.heph_plan import HephPlan
from ..config.node_config import NodeConfig
from ..config.paths import resolve_paths
from ..config.security import NODE_PEER_KEYS, SecurityPolicy, transport_options
from ..errors import PeerUnreachable, RelayError, TransportError
from ..faults.plan import FaultPlan
from ..interfaces import HostPort, Transport
from ..observe.ratelog import RateLimitedLog
from ..observe.stats import Counters, StatsTable
from ..protocol.endpoint import Endpoint
from ..protocol.events import Arrival
from ..protocol.handshake import HELLO_WAITS, HelloSchedule
from ..protocol.outgoing import SealedPackets, outgoing_for
from ..protocol.seal import Sealer
from .calls import PendingCalls
from .links import LinkKey, LinkTable, PeerLink
from .plugin_set import PluginSet

__all__ = ["MAX_TRANSIENT_LINKS", "Links", "as_unreachable", "cannot_reach"]

logger = logging.getLogger("relay_core.node")

MAX_TRANSIENT_LINKS: Final = 4096
UNREACHABLE_ERRNOS: Final = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})
"""OS errors that a transport reports as plain TransportErrors (an ICMP error read from a
datagram socket) and that mean the peer is unreachable: see :func:`as_unreachable`."""


def cannot_reach(link: PeerLink) -> TransportError:
    """What a send or call on a link whose destination could not be prepared raises."""
    error = link.error
    if isinstance(error, PeerUnreachable):  # no answer to the sealed handshake
        return error.again()
    return TransportError(f"cannot reach {link.label}: {error}")


def as_unreachable(scheme: str, destination: HostPort,
                   error: BaseException) -> PeerUnreachable | None:
    """``error`` as a PeerUnreachable if it says the peer cannot be reached, else None.

    A transport that knows reports PeerUnreachable itself, with how long to hold
    it; an OS error from a datagram socket is about one packet, so it holds for 0 s.
    """
    if isinstance(error, PeerUnreachable):
        return error
    if isinstance(error, OSError) and error.errno in UNREACHABLE_ERRNOS:
        return PeerUnreachable(endpoint_url(scheme, destination), os.strerror(error.errno),
                               errno=error.errno)
    return None


class Links:
    def __init__(self, config: NodeConfig, plugins: PluginSet, endpoint: Endpoint,
                 calls: PendingCalls, stats: StatsTable, log: RateLimitedLog, *,
                 security: SecurityPolicy, faults: FaultPlan, heph: HephPlan) -> None:
        self._config = config
        self._plugins = plugins
        self._endpoint = endpoint
        self._calls = calls
        self._stats = stats
        self._log = log
        self._security = security
        self._faults = faults
        self._heph = heph
        self.table = LinkTable(MAX_TRANSIENT_LINKS)
        """Every link this node has, by the address it was made for."""
        self._aliases: dict[LinkKey, list[PeerLink]] = {}
        """Links whose destination is not the key they were made under (a host name, or a
        peer's name), by (scheme, *destination): a failure reported for a destination
        reaches them too."""
        self._peer_names: dict[LinkKey, str] = {
            (peer.parsed.scheme, peer.parsed.host, peer.parsed.port): name
            for name, peer in config.peers.items()
        }
        self._source_counters: dict[LinkKey, Counters] = {}
        self._heph_replies: dict[LinkKey, PeerLink] = {}
        """Links that answer Heph sources, apart from the table: a source's key may name a
        net-relay link as well, which must not be replaced."""
        self._handshakes: dict[int, tuple[SealedPackets, HostPort, asyncio.Future[int]]] = {}
        """Links waiting for their peer's incarnation, by the sequence of their hello."""
        self.tasks: set[asyncio.Task[None]] = set()
        """The tasks preparing links' destinations."""
        self.on_prepared: Callable[[PeerLink], None] = _nothing
        """Called with a link made ready that has frames waiting (they leave then)."""

    def get(self, key: LinkKey) -> PeerLink | None:
        return self.table.get(key)

    def link(self, address: Address, peer: str | None = None) -> PeerLink:
        """The link to ``address``, made (and its destination prepared) on first use."""
        key = (address.scheme, address.host, address.port)
        link = self.table.get(key)
        if link is None or link.error is not None:
            peer = peer or self._peer_names.get(key)
            link = self._new_link(key, address.node_url(), peer, pinned=True,
                                  heph=self._heph.speaks_heph(peer))
            link.fallback = self._fallback_of(peer)
            options = resolve_paths(
                transport_options(self._config.peers[peer].options, NODE_PEER_KEYS)
                if peer else {},
                self._plugins.registry.transport_class(address.scheme).path_options,
                self._config.directory)
            options.update(self._heph.prepare_options(peer))
            link.preparing = self._start_task(self._prepare(link, address, options, peer))
        else:
            self.table.pin(link)
        return link

    def reply_link(self, arrival: Arrival, link: PeerLink | None) -> PeerLink:
        """The link to answer a request over: the one to its source, made if there is none."""
        # The link found for this packet's source, unless its counters are another
        # source's (frames resumed after a stall).
        if link is not None and link.counters is arrival.counters:
            return link
        scheme, source = arrival.scheme, arrival.source
        key = (scheme, source[0], source[1])
        link = self.table.get(key)
        if link is None:
            key_id = arrival.key_id
            sealer = None if key_id is None else self._security.reply_sealer(key_id)
            link = self._new_link(key, endpoint_url(scheme, source), None, pinned=False,
                                  sealer=sealer)
            link.destination = source
            if isinstance(link.out, SealedPackets):
                # A request names its caller: no handshake.
                link.out.peer_incarnation = arrival.incarnation
            self._fit_link(link)
            link.counters = arrival.counters
        return link

    def heph_reply_link(self, scheme: str, source: HostPort) -> PeerLink:
        """The link to answer the Heph node at ``source`` over: envelope datagrams over
        udp, bare messages on its connection over a stream (Heph's tcp relay reads so).

        Made on first use and kept (oldest forgotten first past ``MAX_TRANSIENT_LINKS``,
        since anyone can forge a datagram's source); a link forgotten keeps working for
        the refs that hold it.
        """
        key = (scheme, source[0], source[1])
        link = self._heph_replies.get(key)
        if link is None:
            if len(self._heph_replies) >= MAX_TRANSIENT_LINKS:
                del self._heph_replies[next(iter(self._heph_replies))]
            url = endpoint_url(scheme, source)
            link = self._make_link(key, url, None, pinned=False, heph=True,
                                   bare=self._plugins.transport(scheme).reliable)
            link.destination = source
            self._fit_link(link)
            self._heph_replies[key] = link
        return link

    def counters_for(self, scheme: str, source: HostPort) -> Counters:
        """The counters of what comes from (or goes to) ``source``: its link's, if it has one."""
        link = self.table.find(scheme, source[0], source[1])
        return link.counters if link is not None else self.counters_of(scheme, source)

    def counters_of(self, scheme: str, source: HostPort) -> Counters:
        """The counters of a source no link goes to."""
        key = (scheme, source[0], source[1])
        counters = self._source_counters.get(key)
        if counters is None:
            counters = self._stats.peer(endpoint_url(scheme, source))
            if len(self._source_counters) < MAX_TRANSIENT_LINKS:
                self._source_counters[key] = counters
        return counters

    def call_made_through(self, arrival: Arrival, link: PeerLink | None, call_id: int) -> bool:
        """Whether call ``call_id`` waits on a link to the reply's source: a reply is taken
        only from where its request went (the same address, and so the same connection; or
        the fallback address a link sends its large requests to)."""
        key = (arrival.scheme, arrival.source[0], arrival.source[1])
        if link is None or link.counters is not arrival.counters:
            link = self.table.get(key)
        if link is not None and link.calls is not None and call_id in link.calls:
            return True
        reached = [link] if link is not None else []
        reached += self._aliases.get(key, ())
        # A link's large requests go out over its fallback link, and their replies come back there.
        reached += [origin for candidate in reached for origin in candidate.carries_for or ()]
        return any(candidate.calls is not None and call_id in candidate.calls
                   for candidate in reached)

    def links_to(self, scheme: str, destination: HostPort) -> list[PeerLink]:
        """Every link whose packets go to ``destination``: the one made under that
        address, and those made under a name that resolved to it."""
        key = (scheme, destination[0], destination[1])
        named = self.table.get(key)
        aliases = self._aliases.get(key, [])
        return [named, *aliases] if named is not None else aliases

    def peer_unreachable(self, scheme: str, destination: HostPort,
                         error: PeerUnreachable) -> None:
        """Fail the calls waiting on every link to ``destination``, and hold ``error`` for
        the sends and calls its ``retry_after`` covers."""
        until = asyncio.get_running_loop().time() + error.retry_after
        for link in self.links_to(scheme, destination):
            link.unreachable = error
            link.unreachable_until = until
            if link.calls:
                self._calls.fail(link.calls, error.again)

    def send_failed(self, scheme: str, destination: HostPort, error: BaseException,
                    counters: Counters) -> None:
        """Count and log a failed send; if it says the peer is unreachable, say so to its
        links."""
        counters.send_errors += 1
        self._log.warning("send_error", "send to %s failed: %s",
                          endpoint_url(scheme, destination), error)
        unreachable = as_unreachable(scheme, destination, error)
        if unreachable is not None:
            self.peer_unreachable(scheme, destination, unreachable)

    def send_handshake(self, transport: Transport, destination: HostPort, packet: bytes,
                       counters: Counters) -> None:
        """Send a hello or an answer: one packet straight to the transport, never coalesced."""
        try:
            transport.send(destination, packet)
        except RelayError as exc:
            self.send_failed(transport.scheme, destination, exc, counters)
            return
        counters.packets_sent += 1
        counters.bytes_sent += len(packet)

    def on_answer(self, sender: int, answered: int, scheme: str, source: HostPort) -> None:
        """An authentic answer: incarnation ``sender`` is at ``source`` and answers this
        node's packet ``answered``.

        Taken only for a packet this incarnation sent after the link's last answer (a
        replayed answer is old news), from where the packet went: it completes the
        link's handshake, or tells a link whose peer restarted its new incarnation.
        """
        waiting = self._handshakes.get(answered)
        if waiting is not None:
            sealed, destination, future = waiting
            if source == destination and not future.done() and sealed.accept_answer(answered):
                future.set_result(sender)
            return
        for link in self.links_to(scheme, source):
            out = link.out
            if (not isinstance(out, SealedPackets) or link.destination is None
                    or not out.accept_answer(answered)):
                continue
            if out.peer_incarnation != sender:
                out.peer_incarnation = sender
                self._log.warning("peer_restarted", "%s has a new incarnation; what was sealed "
                                  "for the old one is lost", link.label)

    # -- making and preparing links ------------------------------------------

    def _fallback_of(self, peer: str | None) -> tuple[Address, str] | None:
        fallback = self._config.peers[peer].options.get("fallback") if peer else None
        if not isinstance(fallback, str):
            return None
        assert peer is not None
        return parse_address(fallback, forbid_actor=True), peer

    def _new_link(self, key: LinkKey, url: str, peer: str | None, *, pinned: bool,
                  sealer: Sealer | None = None, heph: bool = False) -> PeerLink:
        link = self._make_link(key, url, peer, pinned=pinned, sealer=sealer, heph=heph)
        self.table.discard(key)
        self.table.add(key, link)
        return link

    def _make_link(self, key: LinkKey, url: str, peer: str | None, *, pinned: bool,
                   sealer: Sealer | None = None, heph: bool = False,
                   bare: bool = False) -> PeerLink:
        if peer is None:
            peer = self._peer_names.get(key)
        config = self._config
        plugins = self._plugins
        codec = config.peer_codec(peer) if peer else config.codec
        compressor = config.peer_compressor(peer) if peer else config.compressor
        transport = plugins.transport(key[0])
        out = outgoing_for(self._endpoint, plugins.codec(codec), plugins.compressor(compressor),
                           config.max_message_size, transport.batch_size,
                           transport.max_packet_size,
                           sealer=sealer or self._security.sealer_for(peer),
                           heph=heph, bare=bare)
        return PeerLink(transport=transport, label=peer or url, out=out,
                        counters=self._stats.peer(peer or url), pinned=pinned)

    async def _prepare(self, link: PeerLink, address: Address, options: Mapping[str, object],
                       peer: str | None) -> None:
        try:
            destination = await link.transport.prepare(address.host, address.port, options)
            self._faults.destination_prepared(link.transport, destination, peer)
            if isinstance(link.out, SealedPackets):
                await self._handshake(link, link.out, address.scheme, destination)
            link.destination = destination
            resolved = (address.scheme, destination[0], destination[1])
            if resolved != (address.scheme, address.host, address.port):
                self._aliases.setdefault(resolved, []).append(link)
            self._fit_link(link)
        except RelayError as exc:
            link.error = exc
            dropped = link.out.drop_queued()
            if isinstance(exc, PeerUnreachable):
                link.counters.peer_unreachable += dropped
                if link.calls:
                    self._calls.fail(link.calls, exc.again)
            else:
                link.counters.send_errors += dropped
            logger.warning(
                "cannot reach %s: %s (%d queued frames dropped)", link.label, exc, dropped
            )
            return
        finally:
            link.preparing = None
        if link.out:
            self.on_prepared(link)

    async def _handshake(self, link: PeerLink, out: SealedPackets, scheme: str,
                         destination: HostPort) -> None:
        """Learn the incarnation of a sealed link's peer before anything is sealed for it.

        Hellos go when the link's :class:`HelloSchedule` says; raise PeerUnreachable
        when it gives up (or when the transport finds the peer unreachable meanwhile).
        """
        sequence, hello = out.hello()
        loop = asyncio.get_running_loop()
        hellos = HelloSchedule(hello, loop.time())
        answered: asyncio.Future[int] = loop.create_future()
        self._handshakes[sequence] = (out, destination, answered)
        try:
            now = loop.time()
            while not hellos.gave_up(now):
                packet = hellos.due(now)
                if packet is not None:
                    self.send_handshake(link.transport, destination, packet, link.counters)
                await asyncio.wait({answered}, timeout=max(0.0, hellos.next_deadline() - now))
                if answered.done():
                    out.peer_incarnation = answered.result()
                    return
                if link.unreachable is not None:
                    raise link.unreachable.again()
                now = loop.time()
        finally:
            del self._handshakes[sequence]
        raise PeerUnreachable(endpoint_url(scheme, destination),
                              f"no answer to {hellos.sent} sealed handshakes in "
                              f"{sum(HELLO_WAITS):g} s (is it running, and does it hold the key?)")

    def _fit_link(self, link: PeerLink) -> None:
        """Size the link's packets to what its destination takes, if that differs."""
        assert link.destination is not None
        limits = link.transport.packet_limits(link.destination)
        if limits != (link.transport.batch_size, link.transport.max_packet_size):
            dropped = link.out.resize(*limits)
            link.counters.oversize += dropped

    def _start_task(self, coroutine: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def _nothing(link: PeerLink) -> None:
    pass
