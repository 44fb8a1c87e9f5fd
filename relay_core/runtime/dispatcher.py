"""The dispatcher: messages to frames to packets, and back to mailboxes.

Outbound, a message is encoded at once (so ``send`` raises for what the sender
can know), framed, and queued on its link. The first frames after a quiet turn
of the event loop leave at once; later ones are coalesced into as few packets
as the destination takes, a packet leaving as soon as it is full and the rest
when the turn ends. Inbound, a packet is checked (allowlist, seal, checksum),
parsed, passed through the duplicate window, and each frame is decoded and
delivered to a mailbox, a pending call, the router, or (for requests) the
:class:`~relay_core.runtime.serving.RequestServer`. Nothing a peer sends can raise out
of ``packet_received``: bad input is dropped, counted and logged (rate-limited).

A message from a reliable transport that finds its mailbox full is not dropped:
its source is parked (see :mod:`relay_core.runtime.backlog`) and ``packet_received``
returns a future telling the transport to stop reading from that source until
the message, and what came after it, have been delivered.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Final

from ..config.address import Address, endpoint_url, format_host_port, parse_address
from ..config.heph_plan import HephPlan
from ..config.node_config import NodeConfig
from ..config.paths import resolve_paths
from ..config.security import NODE_LISTEN_KEYS, NODE_PEER_KEYS, SecurityPolicy, transport_options
from ..errors import (
    ActorStopped,
    ChecksumMismatch,
    CodecError,
    CompressionError,
    ConfigError,
    DecompressionLimitExceeded,
    LinkBusy,
    MalformedFrame,
    MessageTooLarge,
    PeerUnreachable,
    RelayError,
    RpcTimeout,
    TransportError,
    Unauthenticated,
    UnknownPlugin,
)
from ..faults.plan import FaultPlan
from ..interfaces import (
    Codec,
    Compressor,
    ConnectionDropReason,
    HostPort,
    Transport,
    UnsentReason,
)
from ..observe.ratelog import RateLimitedLog
from ..observe.stats import Counters, NodeStats, StatsTable
from ..observe.tracing import outgoing_traceparent
from ..plugins.registry import PluginRegistry
from ..protocol.coalesce import MAX_GROUPED_EXPANSION
from ..protocol.error_payload import error_from_payload
from ..protocol.handshake import HELLO_WAITS, AnswerBudget
from ..protocol.heph import decode_datagram, encode_datagram, is_heph_json
from ..protocol.replycache import call_key
from ..protocol.seal import (
    ANSWER,
    HANDSHAKE_PACKET_SIZE,
    HELLO,
    SEALED,
    Sealer,
    answer_body,
    answered_sequence,
    hello_body,
    is_handshake,
    sealed_header,
    sealed_key_id,
)
from ..protocol.window import DuplicateFilter, Verdict
from ..protocol.wire import (
    NO_DEADLINE,
    NO_FRAME,
    Frame,
    FrameKind,
    PacketWriter,
    decode_frames_compact,
    decode_packet_compact,
    encode_frame,
    expand_repeats,
    is_sealed,
    messages_in_frames,
    with_payload,
)
from .backlog import Backlog, Stall, Stalled
from .calls import PendingCalls
from .links import LinkKey, LinkTable, PeerLink
from .mailbox import ByteBudget, mailbox_of
from .serving import RESEND_FACTOR, LocalActors, RequestServer

__all__ = ["Dispatcher"]

logger = logging.getLogger("relay_core.node")

# Final (here and below): the compiled build reads them as constants, not from the
# module's dict each time they are used.
MAX_TRANSIENT_LINKS: Final = 4096
MAX_DEADLINE_MS: Final = NO_DEADLINE - 1
MIN_BACKLOG_LIMIT = 1024 * 1024
"""A parked source's backlog takes at least this many bytes: more than a stream
transport reads at once (256 KiB), so one that stops reading never meets the limit."""
_FAILED: Final = object()
_MESSAGE: Final = FrameKind.MESSAGE
_REQUEST: Final = FrameKind.REQUEST
_CANCEL: Final = FrameKind.CANCEL
_ERROR: Final = FrameKind.ERROR
UNREACHABLE_ERRNOS: Final = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})
"""OS errors that a transport reports as plain TransportErrors (an ICMP error read from a
datagram socket) and that mean the peer is unreachable: see :func:`_as_unreachable`."""


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


def _cannot_reach(link: PeerLink) -> TransportError:
    """What a send or call on a link whose destination could not be prepared raises."""
    error = link.error
    if isinstance(error, PeerUnreachable):  # no answer to the sealed handshake
        return error.again()
    return TransportError(f"cannot reach {link.label}: {error}")


def _as_unreachable(scheme: str, destination: HostPort,
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


def _milliseconds(seconds: float) -> int:
    """A deadline for the wire: at least 1 ms (0 would mean already expired)."""
    return min(max(int(seconds * 1000), 1), MAX_DEADLINE_MS)


class _Inbound:
    """The events of one transport, tagged with its scheme."""

    __slots__ = ("_dispatcher", "_scheme")

    def __init__(self, dispatcher: Dispatcher, scheme: str) -> None:
        self._dispatcher = dispatcher
        self._scheme = scheme

    def packet_received(self, packet: bytes, source: HostPort) -> asyncio.Future[None] | None:
        # The one door into the node from every transport's read callback: whatever a
        # plugin or the node's own code raises stops here, counted, and the transport
        # (a udp socket, a tcp connection) goes on reading.
        try:
            return self._dispatcher.packet_received(self._scheme, packet, source)
        except Exception as error:  # noqa: BLE001 - a bug must not take a listener down
            self._dispatcher.packet_failed(self._scheme, source, error)
            return None

    def send_failed(self, destination: HostPort | None, error: BaseException) -> None:
        # Called from transports' callbacks and timers too: the same door rule holds.
        try:
            self._dispatcher.send_failed(self._scheme, destination, error)
        except Exception as failure:  # noqa: BLE001 - a bug must not take a transport down
            self._dispatcher.send_failure_failed(self._scheme, destination, failure)

    def packets_unsent(self, destination: HostPort, packets: Sequence[bytes],
                       reason: UnsentReason) -> None:
        self._dispatcher.packets_unsent(self._scheme, destination, packets, reason)

    def input_malformed(self, source: HostPort, error: MalformedFrame) -> None:
        self._dispatcher.input_malformed(self._scheme, source, error)

    def connection_dropped(self, source: HostPort, reason: ConnectionDropReason) -> None:
        self._dispatcher.connection_dropped(self._scheme, source, reason)


class Dispatcher:
    def __init__(self, config: NodeConfig, registry: PluginRegistry, actors: LocalActors) -> None:
        self._config = config
        self._registry = registry
        self._actors = actors
        self._mailboxes = actors.mailboxes
        self.incarnation = int.from_bytes(os.urandom(8), "big") or 1
        self._packets = PacketWriter(self.incarnation)
        self._sequence = 0
        self._transports: dict[str, Transport] = {}
        self._bound: dict[str, list[HostPort]] = {}
        self._links = LinkTable(MAX_TRANSIENT_LINKS)
        self._aliases: dict[LinkKey, list[PeerLink]] = {}
        """Links whose destination is not the key they were made under (a host name, or a
        peer's name), by (scheme, *destination): a failure reported for a destination
        reaches them too."""
        self._dirty: list[PeerLink] = []
        self._flush_handle: asyncio.Handle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """Kept from the first flush: asyncio.get_running_loop() costs a system call."""
        self._sent_this_turn = False
        self._calls = PendingCalls()
        self._server = RequestServer(self, actors, registry, config)
        self._duplicates = DuplicateFilter(config.duplicate_window, config.max_senders)
        self._codecs: dict[str, Codec] = {}
        self._decoders: dict[str, Callable[[bytes], object]] = {}
        """Each codec's ``decode`` by name, bound once: no method lookup per frame."""
        self._max_message_size: int = config.max_message_size
        self._packet_expansion: int = max(config.max_message_size, MAX_GROUPED_EXPANSION)
        """What the compressed frames of one packet may decompress to together: a sender's
        coalescer keeps a group within MAX_GROUPED_EXPANSION and a frame alone within
        max_message_size, so only a hostile packet runs out."""
        self._packet_budget: int = self._packet_expansion
        """What is left of it for the rest of the packet being handled."""
        self._decompression_rate: int = config.max_decompression_rate
        self._decompression_burst: int = max(config.max_decompression_rate // 4,
                                             self._packet_expansion)
        self._decompression_credit: int = self._decompression_burst
        """Bytes the node may decompress now, over every source: refilled at
        ``max_decompression_rate`` a second up to the burst, from the clock only once
        it is spent (so honest traffic under the rate never reads the clock)."""
        self._credit_refilled_at = time.monotonic()
        self._decoded_size = 0
        """What the payload last decoded decompressed to: its weight in a mailbox."""
        self.buffered = ByteBudget(config.max_buffered_bytes)
        """The node's received input held at once: every mailbox and parked backlog."""
        self._compressors: dict[str, Compressor] = {}
        self._source_counters: dict[LinkKey, Counters] = {}
        self._peer_names: dict[LinkKey, str] = {
            (peer.parsed.scheme, peer.parsed.host, peer.parsed.port): name
            for name, peer in config.peers.items()
        }
        self._tasks: set[asyncio.Task[None]] = set()
        self._parked: dict[LinkKey, Backlog] = {}
        self._drains: set[asyncio.Task[None]] = set()
        """One task per parked source; cancelled at close rather than waited for (each
        waits on an actor, and the node's actors have stopped by then)."""
        self._backlog_limit = max(4 * config.max_message_size, MIN_BACKLOG_LIMIT)
        self._security = SecurityPolicy(config)
        self._faults = FaultPlan(config)
        self._heph = HephPlan(config)
        # Looked up once per packet: most schemes need none of these checks.
        self._screened_schemes = self._security.screened_schemes | self._heph.listening_schemes
        self._sealed_schemes = self._security.sealed_schemes
        self._receiving_key_id: int | None = None
        """Key id of the sealed packet being handled, so replies are sealed alike."""
        self._source_link: PeerLink | None = None
        """The link to the source of the packet being handled, if there is one."""
        self._handshakes: dict[int, tuple[PeerLink, HostPort, asyncio.Future[int]]] = {}
        """Links waiting for their peer's incarnation, by the sequence of their hello."""
        self._answer_budget = AnswerBudget()
        self.stats = StatsTable()
        self._log = RateLimitedLog(logger)
        self._closed = False

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
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        for drain in self._drains:
            drain.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)
        self._flush()
        flushes = [asyncio.ensure_future(transport.flush())
                   for transport in self._transports.values()]
        if flushes:
            _, late = await asyncio.wait(flushes, timeout=max(deadline - loop.time(), 0.0))
            for flush in late:
                flush.cancel()
            await asyncio.gather(*flushes, return_exceptions=True)
        self._closed = True
        self._calls.fail_all(ActorStopped("the node closed before a reply came"))
        self._server.active.cancel_all()
        for task in list(self._tasks):
            task.cancel()
        for transport in self._transports.values():
            await transport.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def receiving_sealed(self) -> bool:
        """Whether the packet being handled was sealed (and so authenticated)."""
        return self._receiving_key_id is not None

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
        drops = {scheme: transport.receive_drops() for scheme, transport in self._transports.items()}
        return self.stats.snapshot(self._faults.stats(), self._duplicates.senders, drops)

    def transport(self, scheme: str) -> Transport:
        transport = self._transports.get(scheme)
        if transport is None:
            listen = self._config.listen.get(scheme)
            options = transport_options(listen.options, NODE_LISTEN_KEYS) if listen else {}
            options.update(self._heph.transport_options(scheme))
            transport = self._faults.build(
                scheme, _Inbound(self, scheme),
                lambda events: self._registry.create("transport", scheme, options,
                                                     source=self._config.source,
                                                     directory=self._config.directory,
                                                     args=(events,)))
            self._transports[scheme] = transport
        return transport

    # -- plugins -----------------------------------------------------------

    def make_configured_plugins(self) -> None:
        """Make every plugin the config names, now: a bad option stops the node before it
        starts, never at its first message."""
        makers: dict[str, Callable[[str], object]] = {
            "codec": self.codec, "compressor": self.decompressor, "transport": self.transport}
        for kind, name in self._config.configured_plugins():
            makers[kind](name)

    def codec(self, name: str) -> Codec:
        codec = self._codecs.get(name)
        if codec is None:
            codec = self._codecs[name] = self._registry.create(
                "codec", name, self._config.codec_options.get(name, {}),
                source=self._config.source, directory=self._config.directory)
        return codec

    def compressor(self, name: str) -> Compressor | None:
        """The compressor to send with: None for "none" (frames then name no compressor)."""
        return None if name in ("", "none") else self.decompressor(name)

    def decompressor(self, name: str) -> Compressor:
        compressor = self._compressors.get(name)
        if compressor is None:
            compressor = self._compressors[name] = self._registry.create(
                "compressor", name, self._config.compressor_options.get(name, {}),
                source=self._config.source, directory=self._config.directory)
        return compressor

    # -- outbound ----------------------------------------------------------

    def link(self, address: Address, peer: str | None = None) -> PeerLink:
        """The link to ``address``, made (and its destination prepared) on first use."""
        key = (address.scheme, address.host, address.port)
        link = self._links.get(key)
        if link is None or link.error is not None:
            peer = peer or self._peer_names.get(key)
            link = self._new_link(key, address.node_url(), peer, pinned=True)
            link.fallback = self._fallback_of(peer)
            link.heph = self._heph.speaks_heph(peer)
            options = resolve_paths(
                transport_options(self._config.peers[peer].options, NODE_PEER_KEYS)
                if peer else {},
                self._registry.transport_class(address.scheme).path_options,
                self._config.directory)
            options.update(self._heph.prepare_options(peer))
            link.preparing = self._start_task(self._prepare(link, address, options, peer))
        else:
            self._links.pin(link)
        return link

    def _fallback_of(self, peer: str | None) -> tuple[Address, str] | None:
        fallback = self._config.peers[peer].options.get("fallback") if peer else None
        if not isinstance(fallback, str):
            return None
        assert peer is not None
        return parse_address(fallback, forbid_actor=True), peer

    def _new_link(self, key: LinkKey, url: str, peer: str | None, *, pinned: bool,
                  sealer: Sealer | None = None) -> PeerLink:
        if peer is None:
            peer = self._peer_names.get(key)
        codec = self._config.peer_codec(peer) if peer else self._config.codec
        compressor = self._config.peer_compressor(peer) if peer else self._config.compressor
        link = PeerLink(
            transport=self.transport(key[0]),
            label=peer or url,
            codec=self.codec(codec),
            compressor=self.compressor(compressor),
            counters=self.stats.peer(peer or url),
            pinned=pinned,
            sealer=sealer or self._security.sealer_for(peer),
        )
        self._links.discard(key)
        self._links.add(key, link)
        return link

    async def _prepare(self, link: PeerLink, address: Address, options: Mapping[str, object],
                       peer: str | None) -> None:
        try:
            destination = await link.transport.prepare(address.host, address.port, options)
            self._faults.destination_prepared(link.transport, destination, peer)
            if link.sealer is not None:
                await self._handshake(link, address.scheme, destination)
            link.destination = destination
            resolved = (address.scheme, destination[0], destination[1])
            if resolved != (address.scheme, address.host, address.port):
                self._aliases.setdefault(resolved, []).append(link)
            self._fit_link(link)
        except RelayError as exc:
            link.error = exc
            dropped = sum(len(group) for group in link.coalescer.drain())
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
        if link.coalescer:
            self._mark_dirty(link)

    async def _handshake(self, link: PeerLink, scheme: str, destination: HostPort) -> None:
        """Learn the incarnation of a sealed link's peer before anything is sealed for it.

        A hello goes out, and again while it is unanswered, after each of
        ``HELLO_WAITS``; raise PeerUnreachable when none is answered (or when the
        transport finds the peer unreachable meanwhile).
        """
        sealer = link.sealer
        assert sealer is not None
        self._sequence += 1
        sequence = self._sequence
        hello = sealer.seal(self.incarnation, 0, sequence, hello_body(), SEALED | HELLO)
        answered: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._handshakes[sequence] = (link, destination, answered)
        link.answered = sequence - 1  # answers to what was sent before are not this link's
        try:
            for wait in HELLO_WAITS:
                self._send_handshake(link.transport, destination, hello, link.counters)
                await asyncio.wait({answered}, timeout=wait)
                if answered.done():
                    link.peer_incarnation = answered.result()
                    return
                if link.unreachable is not None:
                    raise link.unreachable.again()
        finally:
            del self._handshakes[sequence]
        raise PeerUnreachable(endpoint_url(scheme, destination),
                              f"no answer to {len(HELLO_WAITS)} sealed handshakes in "
                              f"{sum(HELLO_WAITS):g} s (is it running, and does it hold the key?)")

    def _send_handshake(self, transport: Transport, destination: HostPort, packet: bytes,
                        counters: Counters) -> None:
        """Send a hello or an answer: one packet straight to the transport, never coalesced."""
        try:
            transport.send(destination, packet)
        except RelayError as exc:
            counters.send_errors += 1
            self._log.warning("send_error", "send to %s failed: %s",
                              endpoint_url(transport.scheme, destination), exc)
            unreachable = _as_unreachable(transport.scheme, destination, exc)
            if unreachable is not None:
                self._peer_unreachable(transport.scheme, destination, unreachable)
            return
        counters.packets_sent += 1
        counters.bytes_sent += len(packet)

    def _fit_link(self, link: PeerLink) -> None:
        """Size the link's packets to what its destination takes, if that differs."""
        assert link.destination is not None
        limits = link.transport.packet_limits(link.destination)
        if limits != (link.transport.batch_size, link.transport.max_packet_size):
            dropped = link.resize(*limits)
            link.counters.oversize += dropped

    def send(self, link: PeerLink, target: str, message: object) -> None:
        """Encode ``message`` for ``target`` and queue it; raise for what is known now."""
        if link.error is not None:
            raise _cannot_reach(link)
        if link.unreachable is not None:
            self._refuse_while_unreachable(link)
        if link.heph:
            self.queue(link, encode_datagram(message))  # Heph names no actor: the peer routes
            link.counters.messages_sent += 1
            return
        payload, compressor, expanded = self.encode(link.encode_value, link.compressor, message)
        encoder = link.frame_encoders.get((target, compressor))
        if encoder is None:
            encoder = link.frame_encoder(target, compressor)
        self.queue(link, encoder.encode(payload), expanded)
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
            raise _cannot_reach(link)
        if link.unreachable is not None:
            self._refuse_while_unreachable(link)
        if link.heph:
            raise ConfigError(f"{link.label} speaks heph-json, which has no requests: use send, "
                              "or the net-relay format for RPC")
        payload, compressor, expanded = self.encode(link.encode_value, link.compressor, request)
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
                    self.queue(link, encoder.encode(payload, call_id,
                                                    _milliseconds(seconds_left), request_id,
                                                    traceparent), expanded)
                    link.counters.messages_sent += 1

                return await _resend_until_answered(send_request, future, timeout, retries,
                                                    _timed_out(link, target, timeout, request_id))
            # The common case: one frame, one await. The deadline cancels the
            # future, not the task (cheaper than asyncio.timeout), so a
            # CancelledError while the task is not being cancelled is the deadline.
            try:
                self.queue(link, encoder.encode(payload, call_id, _milliseconds(timeout),
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
                self._send_cancel(link, call_id)

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
            raise _cannot_reach(link)
        if link.unreachable is not None:
            raise link.unreachable.again()
        destination = link.destination
        return (destination is not None and not link.coalescer
                and link.transport.waiting(destination) == 0)

    def _send_cancel(self, link: PeerLink, call_id: int) -> None:
        if not self._closed and link.error is None:
            self.queue(link, encode_frame(Frame(FrameKind.CANCEL, "", b"", call_id=call_id)))

    def encode(
        self, encode_value: Callable[[object], bytes], compressor: Compressor | None,
        value: object
    ) -> tuple[bytes, str, int]:
        """``value`` as a frame's payload (by a codec's bound ``encode``), the name of
        the compressor it went through ("" for none), and what a compressed payload
        expands to (0 for one not compressed): see :meth:`queue`."""
        payload = encode_value(value)
        limit = self._max_message_size
        if len(payload) > limit:
            raise MessageTooLarge(len(payload), limit, "raise [node] max_message_size to allow it")
        if compressor is not None:
            packed = compressor.compress(payload)
            if packed is not None:
                return packed, compressor.name, len(payload)
        return payload, "", 0

    def queue(self, link: PeerLink, frame: bytes, expanded: int = 0) -> None:
        """Queue an encoded frame on ``link``; raise MessageTooLarge if it cannot go.

        ``expanded``: what a compressed frame's payload decompresses to (0 for one not
        compressed), so that no packet's frames expand past the receiver's budget
        (``UNKNOWN_EXPANSION``: a compressed frame that then travels alone).
        """
        if (not self._sent_this_turn and link.sealer is None and not link.heph
                and link.destination is not None and link.coalescer.takes_alone(frame)):
            # The first frame of a turn, nothing waiting (a request, a reply): its
            # packet leaves now, as _mark_dirty would send it, without being grouped.
            self._sent_this_turn = True
            link.counters.frames_sent += 1
            self._sequence += 1
            self._send_packet(link, self._packets.lone(self._sequence, frame))
            return
        try:
            full = link.coalescer.add(frame, expanded)
        except MessageTooLarge as exc:
            if link.fallback is not None:
                fallback = self.link(*link.fallback)
                carries_for = fallback.carries_for
                if carries_for is None:
                    carries_for = fallback.carries_for = []
                if link not in carries_for:
                    carries_for.append(link)
                self.queue(fallback, frame, expanded)
                return
            link.counters.oversize += 1
            hint = (
                ""
                if link.transport.reliable
                else ("use a stream transport (tcp:// or quic://) for large messages")
            )
            raise MessageTooLarge(exc.size, exc.limit, hint) from None
        link.counters.frames_sent += 1
        if full and link.destination is not None:
            self._send_groups(link, link.coalescer.take_full())  # a packet is full: no waiting
        self._mark_dirty(link)

    def _mark_dirty(self, link: PeerLink) -> None:
        """Get the link's frames on their way.

        The first frames of a turn of the event loop go at once, so a request or
        a reply waits for nothing; frames queued after them are coalesced and
        flushed together by a callback at the next turn. A turn begins with a
        received packet or a flush; a lone send schedules nothing, which spares
        the loop a pass per request or reply.
        """
        if link.dirty or link.destination is None:
            return
        if not self._sent_this_turn:
            self._sent_this_turn = True
            self._send_queued(link)
            return
        link.dirty = True
        self._dirty.append(link)
        if self._flush_handle is None:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self._sent_this_turn = False
        dirty, self._dirty = self._dirty, []
        for link in dirty:
            link.dirty = False
            self._send_queued(link)

    def _send_queued(self, link: PeerLink) -> None:
        self._send_groups(link, link.coalescer.drain())

    def _send_groups(self, link: PeerLink, groups: list[list[bytes]]) -> None:
        if link.heph:  # each "frame" is a whole Heph datagram
            for group in groups:
                for datagram in group:
                    self._send_packet(link, datagram)
            return
        sealer = link.sealer
        for group in groups:
            self._sequence += 1
            if sealer is None:
                packet = self._packets.packet(self._sequence, group)
            else:
                packet = sealer.seal(self.incarnation, link.peer_incarnation, self._sequence,
                                     b"".join(group))
            self._send_packet(link, packet)

    def _send_packet(self, link: PeerLink, packet: bytes) -> None:
        assert link.destination is not None
        counters = link.counters
        try:
            full = link.send_packet(link.destination, packet)
        except RelayError as exc:
            counters.send_errors += 1
            self._log.warning("send_error", "send to %s failed: %s", link.label, exc)
            scheme = link.transport.scheme
            unreachable = _as_unreachable(scheme, link.destination, exc)
            if unreachable is not None:
                self._peer_unreachable(scheme, link.destination, unreachable)
            return
        if full is not None:
            link.full = full
        counters.packets_sent += 1
        counters.bytes_sent += len(packet)

    def packets_unsent(self, scheme: str, destination: HostPort, packets: Sequence[bytes],
                       reason: UnsentReason) -> None:
        """A transport dropped ``packets`` unsent: count their messages under ``reason``."""
        link = self._links.get((scheme, destination[0], destination[1]))
        counters = (link.counters if link is not None
                    else self.stats.peer(endpoint_url(scheme, destination)))
        lost = sum(self._messages_in_sent(link, packet) for packet in packets)
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

    def _messages_in_sent(self, link: PeerLink | None, packet: bytes) -> int:
        """How many messages (requests and replies included) a packet this node sent holds."""
        if link is not None and link.heph:
            return 1
        try:
            if not is_sealed(packet):
                return messages_in_frames(decode_packet_compact(packet)[2])
            if is_handshake(packet):
                return 0
            if link is not None and link.sealer is not None:
                body = link.sealer.open(packet, link.peer_incarnation)[2]
                return messages_in_frames(decode_frames_compact(body))
        except MalformedFrame:
            pass
        return 1  # cannot be read back here: at least the one message it was sent for

    def input_malformed(self, scheme: str, source: HostPort, error: MalformedFrame) -> None:
        """A transport closed a connection whose bytes could not be cut into packets."""
        link = self._links.get((scheme, source[0], source[1]))
        counters = (link.counters if link is not None
                    else self.stats.peer(endpoint_url(scheme, source)))
        counters.malformed += 1
        self._log.warning("malformed", "closed the connection from %s: %s",
                          endpoint_url(scheme, source), error)

    def connection_dropped(self, scheme: str, source: HostPort,
                           reason: ConnectionDropReason) -> None:
        """A listener refused or closed a connection for a limit, or dropped a handshake to
        make room: count it (the transport logs it, rate-limited, with the limit's name)."""
        link = self._links.get((scheme, source[0], source[1]))
        counters = (link.counters if link is not None
                    else self.stats.peer(endpoint_url(scheme, source)))
        if reason == "connections_refused":
            counters.connections_refused += 1
        elif reason == "connections_timed_out":
            counters.connections_timed_out += 1
        elif reason == "connections_over_budget":
            counters.connections_over_budget += 1
        else:
            counters.handshakes_dropped += 1

    # -- inbound -----------------------------------------------------------

    def send_failed(self, scheme: str, destination: HostPort | None, error: BaseException) -> None:
        if destination is None:
            counters = self.stats.local
            where = f"{scheme} socket"
        else:
            counters = self._counters_for(scheme, destination)
            where = endpoint_url(scheme, destination)
        counters.send_errors += 1
        self._log.warning("send_error", "send to %s failed: %s", where, error)
        if destination is not None:
            unreachable = _as_unreachable(scheme, destination, error)
            if unreachable is not None:
                self._peer_unreachable(scheme, destination, unreachable)

    def _peer_unreachable(self, scheme: str, destination: HostPort,
                          error: PeerUnreachable) -> None:
        """Fail the calls waiting on every link to ``destination``, and hold ``error`` for
        the sends and calls its ``retry_after`` covers."""
        until = asyncio.get_running_loop().time() + error.retry_after
        for link in self._links_to(scheme, destination):
            link.unreachable = error
            link.unreachable_until = until
            if link.calls:
                self._calls.fail(link.calls, error.again)

    def _links_to(self, scheme: str, destination: HostPort) -> list[PeerLink]:
        """Every link whose packets go to ``destination``: the one made under that
        address, and those made under a name that resolved to it."""
        key = (scheme, destination[0], destination[1])
        named = self._links.get(key)
        aliases = self._aliases.get(key, [])
        return [named, *aliases] if named is not None else aliases

    def packet_received(self, scheme: str, data: bytes,
                        source: HostPort) -> asyncio.Future[None] | None:
        """Handle one packet; a future while ``source`` is parked (see the module docstring)."""
        if self._parked:
            backlog = self._parked.get((scheme, source[0], source[1]))
            if backlog is not None and not backlog.draining:
                return self._hold(backlog, scheme, data, source)
        self._sent_this_turn = False
        counters = self._counters_for(scheme, source)
        counters.packets_received += 1
        counters.bytes_received += len(data)
        if scheme in self._screened_schemes:
            if not self._security.allows(scheme, source[0]):
                counters.not_allowed += 1
                self._log.warning("not_allowed", "dropped a packet from %s: source not allowed",
                                  endpoint_url(scheme, source))
                return None
            heph_target = self._heph.target_for(scheme)
            if heph_target is not None and is_heph_json(data):
                return self._on_heph(data, heph_target, scheme, source, counters)
        try:
            if is_sealed(data):
                opened = self._open(data, scheme, source, counters)
                if opened is None:  # a reflection or a handshake, handled and counted
                    return None
                incarnation, sequence, frames = opened
                window = incarnation
            elif scheme in self._sealed_schemes:
                raise Unauthenticated(f"{scheme} packets must be sealed here; this one is not")
            else:
                incarnation, sequence, frames = decode_packet_compact(data)
                self._receiving_key_id = None
                # Anyone can write a plain packet with a sender's incarnation: keyed by
                # where it came from too, such a packet moves only a window of its own.
                window = incarnation ^ hash(source)
        except MalformedFrame as exc:
            self._count_bad_packet(exc, counters, scheme, source)
            return None
        if incarnation == self.incarnation:  # this node's own packet, sent back at it
            self._count_reflected(counters, scheme, source)
            return None
        verdict = self._duplicates.check(window, sequence)
        if verdict is not Verdict.ACCEPTED:
            if verdict is Verdict.DUPLICATE:
                counters.duplicates += 1
            else:
                counters.too_old += 1
            return None
        if self._receiving_key_id is not None:
            self._learn_incarnation(incarnation)
        counters.frames_received += len(frames)
        self._server.resend_budget = RESEND_FACTOR * len(data)
        self._packet_budget = self._packet_expansion
        return self._handle_frames(iter(frames), scheme, source, counters, incarnation)

    def _handle_frames(self, frames: Iterator[Frame | bytes], scheme: str, source: HostPort,
                       counters: Counters, incarnation: int) -> asyncio.Future[None] | None:
        """Handle a packet's frames, compactly decoded: a payload alone repeats the frame
        before it (see ``decode_packet_compact``)."""
        frame = NO_FRAME  # a packet's first item is a frame, never a repeat
        try:
            # Branches, not a table of handlers: a call through a table hands the
            # source over as a new tuple per frame, where native calls pass it as is.
            for item in frames:
                if isinstance(item, bytes):
                    if frame.kind is _MESSAGE:  # a burst to one actor: no frame is made
                        self._on_message(frame, item, scheme, source, counters)
                        continue
                    frame = with_payload(frame, item)
                else:
                    frame = item
                kind = frame.kind
                if kind is _MESSAGE:
                    self._on_message(frame, frame.payload, scheme, source, counters)
                elif kind is _REQUEST:
                    self._on_request(frame, scheme, source, counters, incarnation)
                elif kind is _CANCEL:
                    self._on_cancel(frame, scheme, source, counters, incarnation)
                else:
                    self._on_reply(frame, scheme, source, counters, incarnation)
        except Stalled as stalled:
            # ``frames`` has stopped just past the stalled frame: the rest waits behind it,
            # expanded, as a leading repeat needs the frame it repeats.
            stall = Stall(stalled, expand_repeats(frames, frame), incarnation,
                          self._receiving_key_id, self._packet_budget)
            return self._park(scheme, source, stall)
        return None

    def _on_heph(self, data: bytes, target: str, scheme: str, source: HostPort,
                 counters: Counters) -> asyncio.Future[None] | None:
        """A Heph JSON datagram: checked, deduplicated by uuid, delivered to ``target``."""
        try:
            heph = decode_datagram(data, self._config.max_message_size)
        except MalformedFrame as exc:
            self._count_bad_packet(exc, counters, scheme, source)
            return None
        if not self._heph.window.first_time(heph.uuid):
            counters.duplicates += 1
            return None
        counters.frames_received += 1
        counters.messages_received += 1
        try:
            self._deliver(heph.message, len(data), target, scheme, source, counters)
        except Stalled as stalled:
            return self._park(scheme, source, Stall(stalled, iter(()), 0, None, 0))
        return None

    def _count_reflected(self, counters: Counters, scheme: str, source: HostPort) -> None:
        counters.reflected += 1
        self._log.warning("reflected", "dropped a packet from %s that carries this node's "
                          "own incarnation", endpoint_url(scheme, source))

    # -- sealed packets ----------------------------------------------------

    def _open(self, data: bytes, scheme: str, source: HostPort,
              counters: Counters) -> tuple[int, int, tuple[Frame | bytes, ...]] | None:
        """Verify and decrypt a sealed packet (nothing is decoded before the tag verifies);
        None for one handled here: this node's own, or a handshake."""
        opener = self._security.opener
        if opener is None:
            raise Unauthenticated("a sealed packet, but this node has no keys")
        if int.from_bytes(data[8:16], "big") == self.incarnation:
            # Never opened: only this node seals with its incarnation.
            self._count_reflected(counters, scheme, source)
            return None
        try:
            sender, sequence, body, flags = opener.open(data, self.incarnation)
        except Unauthenticated:
            flags, key_id, sender, sequence = sealed_header(data)
            if flags == SEALED:  # perhaps sealed for this node before it restarted: say so
                self._answer(scheme, source, counters, key_id, sender, sequence, len(data))
            raise
        key_id = sealed_key_id(data)
        if flags != SEALED:
            if flags & HELLO:
                self._answer(scheme, source, counters, key_id, sender, sequence, len(data))
            else:
                self._on_answer(sender, answered_sequence(body), scheme, source)
            return None
        self._receiving_key_id = key_id
        return sender, sequence, decode_frames_compact(body)

    def _answer(self, scheme: str, source: HostPort, counters: Counters, key_id: int,
                receiver: int, answered: int, size: int) -> None:
        """Tell incarnation ``receiver`` at ``source`` this node's incarnation, answering its
        packet ``answered`` (a hello, or a packet sealed for another incarnation).

        Stateless but for the per-source budget; never more bytes than the packet it
        answers, and only under a key this node holds, for a sender that names itself.
        """
        opener = self._security.opener
        if (size < HANDSHAKE_PACKET_SIZE or not receiver or not answered
                or opener is None or not opener.holds(key_id)):
            return
        now = asyncio.get_running_loop().time()
        if not self._answer_budget.allows((scheme, source[0], source[1]), now):
            counters.handshake_answers_limited += 1
            self._log.warning("handshake_answers_limited", "sent no handshake answer to %s: "
                              "it drew its share this second", endpoint_url(scheme, source))
            return
        self._sequence += 1
        packet = self._security.reply_sealer(key_id).seal(
            self.incarnation, receiver, self._sequence, answer_body(answered), SEALED | ANSWER)
        self._send_handshake(self.transport(scheme), source, packet, counters)

    def _on_answer(self, sender: int, answered: int, scheme: str, source: HostPort) -> None:
        """An authentic answer: incarnation ``sender`` is at ``source`` and answers this
        node's packet ``answered``.

        Taken only for a packet this incarnation sent after the link's last answer (a
        replayed answer is old news), from where the packet went: it completes the
        link's handshake, or tells a link whose peer restarted its new incarnation.
        """
        if answered > self._sequence:
            return
        waiting = self._handshakes.get(answered)
        if waiting is not None:
            link, destination, future = waiting
            if source == destination and answered > link.answered and not future.done():
                link.answered = answered
                future.set_result(sender)
            return
        for link in self._links_to(scheme, source):
            if link.sealer is None or link.destination is None or answered <= link.answered:
                continue
            link.answered = answered
            if link.peer_incarnation != sender:
                link.peer_incarnation = sender
                self._log.warning("peer_restarted", "%s has a new incarnation; what was sealed "
                                  "for the old one is lost", link.label)

    def _learn_incarnation(self, incarnation: int) -> None:
        """A sealed packet from ``incarnation`` was accepted: its source's link seals for it.

        Such a packet was sealed for this node's incarnation, so it is no replay from
        before this node started; the duplicate window has refused copies of it.
        """
        link = self._source_link
        if link is not None and link.sealer is not None:
            link.peer_incarnation = incarnation

    def _count_bad_packet(self, error: MalformedFrame, counters: Counters, scheme: str,
                          source: HostPort) -> None:
        if isinstance(error, ChecksumMismatch):
            counters.corrupt += 1
            kind, what = "corrupt", "a damaged"
        elif isinstance(error, Unauthenticated):
            counters.unauthenticated += 1
            kind, what = "unauthenticated", "an unauthenticated"
        else:
            counters.malformed += 1
            kind, what = "malformed", "a malformed"
        self._log.warning(kind, "dropped %s packet from %s: %s", what,
                          endpoint_url(scheme, source), error)

    def internal_error(self, counters: Counters, what: str, error: Exception) -> None:
        """Count and log (rate-limited, with its traceback) what a plugin or the node's own
        code raised that it should not have, while handling ``what``."""
        counters.internal_errors += 1
        self._log.error("internal_error", "an unexpected %s while handling %s, which is "
                        "dropped: %s", type(error).__name__, what, error, exc_info=error)

    def send_failure_failed(self, scheme: str, destination: HostPort | None,
                            error: Exception) -> None:
        """Count what :meth:`send_failed` raised while it handled a transport's report.

        Counted as the node's own: the report may be what was wrong, destination included.
        """
        self.internal_error(self.stats.local, f"a {scheme} send failure to {destination!r}",
                            error)

    def packet_failed(self, scheme: str, source: HostPort, error: Exception) -> None:
        """Count what :meth:`packet_received` raised: the rest of that packet is lost."""
        self.internal_error(self._counters_for(scheme, source),
                            f"a packet from {endpoint_url(scheme, source)}", error)

    def _counters_for(self, scheme: str, source: HostPort) -> Counters:
        link = self._links.find(scheme, source[0], source[1])
        self._source_link = link
        if link is not None:
            return link.counters
        key = (scheme, source[0], source[1])
        counters = self._source_counters.get(key)
        if counters is None:
            counters = self.stats.peer(endpoint_url(scheme, source))
            if len(self._source_counters) < MAX_TRANSIENT_LINKS:
                self._source_counters[key] = counters
        return counters

    def _decode(self, frame: Frame, payload: bytes, counters: Counters, scheme: str,
                source: HostPort) -> object:
        """``payload``, in ``frame``'s codec and compressor, as an object, or _FAILED
        (counted and logged)."""
        try:
            decode = self._decoders.get(frame.codec)
            if decode is None:
                decode = self._decoders[frame.codec] = self.codec(frame.codec).decode
            if frame.compressor:
                budget = self._packet_budget
                if budget <= 0:
                    return self._over_budget(counters, scheme, source)
                credit = self._decompression_credit
                if credit <= 0 and (credit := self._refill_credit()) <= 0:
                    return self._decompression_limited(counters, scheme, source)
                decompressor = self.decompressor(frame.compressor)
                # At most what the packet has left: a frame that declares more is
                # refused before any work, one that does not is cut off there. The
                # credit may go below zero by one message: what it owes is earned back
                # before the next frame is decompressed.
                payload = decompressor.decompress(payload, min(budget, self._max_message_size))
                self._packet_budget = budget - len(payload)
                self._decompression_credit = credit - len(payload)
            elif len(payload) > self._max_message_size:
                counters.oversize += 1
                return _FAILED
            self._decoded_size = len(payload)
            return decode(payload)
        except DecompressionLimitExceeded as exc:
            if self._packet_budget < self._max_message_size:
                return self._over_budget(counters, scheme, source)
            counters.oversize += 1
            self._log.warning("oversize", "dropped a frame from %s that decompresses past the "
                              "message size limit: %s", endpoint_url(scheme, source), exc)
        except UnknownPlugin as exc:
            counters.unsupported_codec += 1
            self._log.warning("unsupported_codec", "dropped a frame from %s: %s",
                              endpoint_url(scheme, source), exc)
        except (CodecError, CompressionError) as exc:
            counters.undecodable += 1
            self._log.warning("undecodable", "dropped an undecodable frame from %s: %s",
                              endpoint_url(scheme, source), exc)
        except Exception as exc:  # noqa: BLE001 - a plugin's bug costs this frame only
            self.internal_error(counters, f"a frame from {endpoint_url(scheme, source)} in "
                                f"codec {frame.codec!r}, compressor {frame.compressor or 'none'!r}",
                                exc)
        return _FAILED

    def _refill_credit(self) -> int:
        """The decompression credit, refilled for the time since it last was."""
        now = time.monotonic()
        earned = int((now - self._credit_refilled_at) * self._decompression_rate)
        self._credit_refilled_at = now
        credit = min(self._decompression_credit + earned, self._decompression_burst)
        self._decompression_credit = credit
        return credit

    def _decompression_limited(self, counters: Counters, scheme: str,
                               source: HostPort) -> object:
        """Drop a compressed frame the node's decompression rate has no room for now."""
        counters.decompression_limited += 1
        self._log.warning("decompression_limited", "dropped a compressed frame from %s: the "
                          "node decompresses at most max_decompression_rate = %d bytes a "
                          "second", endpoint_url(scheme, source), self._decompression_rate)
        return _FAILED

    def _over_budget(self, counters: Counters, scheme: str, source: HostPort) -> object:
        """Drop a compressed frame that would take its packet past the budget, and
        decompress nothing more of that packet: no sender's coalescer makes such a packet."""
        self._packet_budget = 0
        counters.over_budget += 1
        self._log.warning("over_budget", "dropped a compressed frame from %s: its packet's "
                          "frames decompress past %d bytes together, the most a sender puts "
                          "in one packet", endpoint_url(scheme, source), self._packet_expansion)
        return _FAILED

    def _on_message(self, frame: Frame, payload: bytes, scheme: str, source: HostPort,
                    counters: Counters) -> None:
        message = self._decode(frame, payload, counters, scheme, source)
        if message is _FAILED:
            return
        counters.messages_received += 1
        self._deliver(message, self._decoded_size, frame.target, scheme, source, counters)

    def _deliver(self, message: object, size: int, target: str, scheme: str, source: HostPort,
                 counters: Counters) -> None:
        """Queue ``message``, weighing ``size`` bytes, for ``target``; raise Stalled for a
        full mailbox on a reliable transport (the source is then parked), else drop what
        cannot be queued."""
        mailbox = mailbox_of(self._mailboxes, target)
        if mailbox is None or mailbox.closed:
            if not self._actors.deliver_unrouted(message, endpoint_url(scheme, source)):
                counters.unknown_actor += 1
                self._log.warning("unknown_actor", "dropped a message from %s for unknown actor %r",
                                  endpoint_url(scheme, source), target)
        elif not mailbox.put_nowait(message, size):
            if self.transport(scheme).reliable:
                raise Stalled(mailbox, message, size, target, counters)
            counters.mailbox_full += 1
            self._log.warning("mailbox_full", "dropped a message from %s: mailbox of %r is full "
                              "(in messages or bytes), or the node holds max_buffered_bytes",
                              endpoint_url(scheme, source), target)

    def _on_request(self, frame: Frame, scheme: str, source: HostPort, counters: Counters,
                    incarnation: int) -> None:
        link = self._reply_link(scheme, source, counters, incarnation)
        key = call_key(incarnation, frame.call_id)
        server = self._server
        if server.is_retry(key, frame, link, counters):
            return
        request = self._decode(frame, frame.payload, counters, scheme, source)
        if request is _FAILED:
            server.reject(link, frame)
            return
        counters.messages_received += 1
        server.serve(link, frame, key, request, self._decoded_size, counters, scheme, source)

    def _on_cancel(
        self, frame: Frame, scheme: str, source: HostPort, counters: Counters, incarnation: int
    ) -> None:
        link = self._source_link
        if link is None or link.counters is not counters:
            link = self._links.get((scheme, source[0], source[1]))
        if not self._server.active.cancel_from(call_key(incarnation, frame.call_id), link):
            counters.forged_cancels += 1
            self._log.warning("forged_cancel", "a cancel for a request that came from elsewhere "
                              "came from %s; ignored", endpoint_url(scheme, source))

    def _on_reply(
        self, frame: Frame, scheme: str, source: HostPort, counters: Counters, incarnation: int
    ) -> None:
        call_id = frame.call_id
        if not self._call_made_through(scheme, source, counters, call_id):
            if self._calls.is_waiting(call_id):
                counters.forged_replies += 1
                self._log.warning("forged_reply", "a reply to a call waiting on another link "
                                  "came from %s; dropped", endpoint_url(scheme, source))
            else:
                counters.late_replies += 1
            return
        future = self._calls.take(call_id)
        if future is None:
            counters.late_replies += 1
            return
        value = self._decode(frame, frame.payload, counters, scheme, source)
        try:
            if value is _FAILED:
                future.set_exception(RelayError(
                    f"the reply from {endpoint_url(scheme, source)} could not be decoded"))
            elif frame.kind is _ERROR:
                future.set_exception(error_from_payload(value, endpoint_url(scheme, source)))
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
            backlog = self._parked[key] = Backlog(future, self._backlog_limit, self.buffered)
            drain = asyncio.ensure_future(self._drain(key, source, backlog))
            self._drains.add(drain)
            drain.add_done_callback(self._drains.discard)
        backlog.stall = stall
        return backlog.future

    def _hold(self, backlog: Backlog, scheme: str, data: bytes,
              source: HostPort) -> asyncio.Future[None]:
        """Keep a packet from a parked source for later, unless past the backlog's guard."""
        if not backlog.hold(data):
            counters = self._counters_for(scheme, source)
            counters.packets_received += 1
            counters.bytes_received += len(data)
            counters.mailbox_full += self._messages_in_received(data)
            self._log.warning("mailbox_full", "dropped a packet from %s: it kept sending while "
                              "a mailbox was full and its backlog is at the limit",
                              endpoint_url(scheme, source))
        return backlog.future

    def _messages_in_received(self, data: bytes) -> int:
        """How many messages a received packet holds, to count them when it is dropped."""
        try:
            if not is_sealed(data):
                return messages_in_frames(decode_packet_compact(data)[2])
            if is_handshake(data):
                return 0
            opener = self._security.opener
            if opener is not None:
                body = opener.open(data, self.incarnation)[2]
                return messages_in_frames(decode_frames_compact(body))
        except MalformedFrame:
            pass
        return 1  # unreadable (or a heph-json datagram): one message, as far as can be told

    async def _drain(self, key: LinkKey, source: HostPort, backlog: Backlog) -> None:
        """Deliver a parked source's stalled messages and what waits behind them, in order."""
        try:
            while (stall := backlog.stall) is not None:
                backlog.stall = None
                await self._put_stalled(stall.stalled, key[0], source)
                self._resume(key[0], source, stall, backlog)
        except Exception as error:  # noqa: BLE001 - as in _Inbound.packet_received
            self.packet_failed(key[0], source, error)
        finally:
            del self._parked[key]
            backlog.let_go()  # only if a bug stopped the drain: counted as one above
            if not backlog.future.done():
                backlog.future.set_result(None)

    async def _put_stalled(self, stalled: Stalled, scheme: str, source: HostPort) -> None:
        """Wait for room for the message; if its actor stops, deliver it as to a stopped actor."""
        mailbox = stalled.mailbox
        while True:
            try:
                await mailbox.put(stalled.message, stalled.size)
                return
            except ActorStopped:
                pass
            try:
                self._deliver(stalled.message, stalled.size, stalled.target, scheme, source,
                              stalled.counters)
                return
            except Stalled as again:  # a restarted actor, with a new mailbox already full
                mailbox = again.mailbox

    def _resume(self, scheme: str, source: HostPort, stall: Stall, backlog: Backlog) -> None:
        """Hand on what waited behind ``stall``, until the next stall or an empty backlog."""
        backlog.draining = True
        try:
            self._receiving_key_id = stall.key_id
            self._server.resend_budget = 0  # its packet's budget went with that packet's turn
            self._packet_budget = stall.budget
            self._handle_frames(stall.rest, scheme, source, stall.stalled.counters,
                                stall.incarnation)
            while backlog.stall is None and (packet := backlog.take()) is not None:
                self.packet_received(scheme, packet, source)
        finally:
            backlog.draining = False

    # -- replies -----------------------------------------------------------

    def _call_made_through(self, scheme: str, source: HostPort, counters: Counters,
                           call_id: int) -> bool:
        """Whether call ``call_id`` waits on a link to ``source``: a reply is taken only
        from where its request went (the same address, and so the same connection; or
        the fallback address a link sends its large requests to)."""
        link = self._source_link
        if link is None or link.counters is not counters:
            link = self._links.get((scheme, source[0], source[1]))
        if link is not None and link.calls is not None and call_id in link.calls:
            return True
        reached = [link] if link is not None else []
        reached += self._aliases.get((scheme, source[0], source[1]), ())
        # A link's large requests go out over its fallback link, and their replies come back there.
        reached += [origin for candidate in reached for origin in candidate.carries_for or ()]
        return any(candidate.calls is not None and call_id in candidate.calls
                   for candidate in reached)

    def _reply_link(self, scheme: str, source: HostPort, counters: Counters,
                    incarnation: int) -> PeerLink:
        # The link _counters_for found for this packet's source, unless these
        # counters are another source's (frames resumed after a stall).
        link = self._source_link
        if link is not None and link.counters is counters:
            return link
        key = (scheme, source[0], source[1])
        link = self._links.get(key)
        if link is None:
            key_id = self._receiving_key_id
            sealer = None if key_id is None else self._security.reply_sealer(key_id)
            link = self._new_link(key, endpoint_url(scheme, source), None, pinned=False,
                                  sealer=sealer)
            link.destination = source
            link.peer_incarnation = incarnation  # a request names its caller: no handshake
            self._fit_link(link)
            link.counters = counters
        return link

    def _start_task(self, coroutine: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
