"""Serving requests from other nodes: the handling side of an RPC.

A decoded request becomes an :class:`Rpc` delivered to the named actor (or the
router); its answer goes back as a RESPONSE or ERROR frame over the link it
came on. A request that is already running or was just answered is a retry:
it is ignored or answered from the reply cache, never run twice. A cached reply
goes again only to the link it went to, and only while the packets asking for it
have brought in at least a third of its bytes: a forged retry (any source can
claim a caller's incarnation and call id) can neither redirect a reply nor draw
more than three times its own size, which keeps the node useless as a reflector. A request
that never reaches a handler (unknown actor, full mailbox, undecodable) is
refused at once with a typed error, and not cached, so a retry may succeed.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from ..config.address import endpoint_url
from ..config.node_config import NodeConfig
from ..errors import RelayError
from ..interfaces import Compressor
from ..observe.ratelog import RateLimitedLog
from ..observe.stats import StatsTable
from ..protocol.coalesce import UNKNOWN_EXPANSION
from ..protocol.decoding import count_internal_error
from ..protocol.endpoint import RESEND_FACTOR
from ..protocol.error_payload import ErrorCode, error_payload
from ..protocol.events import Arrival
from ..protocol.outgoing import encode_payload
from ..protocol.replycache import ReplyCache, Retry, check_retry
from ..protocol.wire import (
    Frame,
    FrameKind,
    ReplyFrameEncoder,
    encode_frame,
    frame_is_compressed,
)
from .calls import ActiveRequests, CallKey
from .links import PeerLink
from .mailbox import Mailbox, mailbox_of
from .outbox import Outbox
from .plugin_set import PluginSet
from .rpc import Rpc, new_request_id
from .rpc_state import RpcState

__all__ = ["LocalActors", "RequestServer", "ServedRequest"]

logger = logging.getLogger("relay_core.node")

_bare: Final = object.__new__

_ReplyPlan = tuple[Callable[[object], bytes], "Compressor | None", dict[str, ReplyFrameEncoder]]
"""A request's codec's bound ``encode``, its compressor, and the reply encoder for each
compressor name."""


class LocalActors(Protocol):
    """What the node layer needs from the node's actor table."""

    @property
    def mailboxes(self) -> Mapping[str, Mailbox]:
        """The mailbox of each local actor, by name (kept current by the node)."""

    def deliver_unrouted(self, message: object, source: str) -> bool:
        """Offer a message for an unknown name to the router; False if there is none."""


class RequestServer:
    def __init__(self, outbox: Outbox, plugins: PluginSet, actors: LocalActors,
                 config: NodeConfig, stats: StatsTable, log: RateLimitedLog) -> None:
        self._outbox = outbox
        self._plugins = plugins
        self._stats = stats
        self._log = log
        self._actors = actors
        self._mailboxes = actors.mailboxes
        self._config = config
        self.active = ActiveRequests(ReplyCache(), config.max_active_requests)
        self._max_deadline = config.max_request_deadline
        self._reply_plans: dict[tuple[str, str], _ReplyPlan] = {}
        self._clock: Callable[[], float] | None = None
        """The event loop's time(), kept: asyncio.get_running_loop() costs a system call."""

    def is_retry(self, key: CallKey, frame: Frame, link: PeerLink, arrival: Arrival) -> bool:
        """True for a request already running or answered: it must not run again.

        What an answered one gets is the protocol's rule (:func:`check_retry`); this
        sends it.
        """
        if key in self.active:
            arrival.counters.duplicates += 1
            return True
        retry = check_retry(self.active.replies, key, link, arrival, link.transport.reliable)
        if retry is None:
            return False
        verdict, reply = retry
        if verdict is Retry.RESEND:
            self._resend(link, reply)
        elif verdict is Retry.REFUSE:
            refusal = self._error_frame(
                frame, ErrorCode.REPLY_NOT_RESENT, "ReplyNotResent",
                f"reply of {len(reply)} bytes already sent; resent only to retries of "
                f"at least 1/{RESEND_FACTOR} its size", codec="json")
            if arrival.draw_resend(len(refusal)):
                self._outbox.queue(link, refusal)
        return True

    def _resend(self, link: PeerLink, reply: bytes) -> None:
        # What a cached compressed reply expands to was not kept: it goes alone.
        self._outbox.queue(link, reply, UNKNOWN_EXPANSION if frame_is_compressed(reply) else 0)

    def serve(self, link: PeerLink, frame: Frame, key: CallKey, request: object,
              arrival: Arrival) -> None:
        """Hand a decoded request (which weighs ``arrival.decoded_size`` bytes in a mailbox)
        to its actor (or the router), or refuse it."""
        counters = arrival.counters
        clock = self._clock
        if clock is None:
            clock = self._clock = asyncio.get_running_loop().time
        longest = self._max_deadline
        wanted = frame.deadline_ms
        deadline = clock() + (
            longest if wanted is None or wanted / 1000 > longest else wanted / 1000)
        state = ServedRequest(self, link, frame, key, deadline, clock)
        # Rpc.__init__ would be an interpreted call per request: the handler's Rpc is
        # made bare and given what that method sets.
        rpc: Rpc[object] = _bare(Rpc)
        rpc.request = request
        rpc._state = state
        if self.active.start(key, state):
            self._stats.local.requests_evicted += 1
        mailbox = mailbox_of(self._mailboxes, frame.target)
        if mailbox is None or mailbox.closed:
            if not self._actors.deliver_unrouted(rpc, endpoint_url(arrival.scheme,
                                                                   arrival.source)):
                self.active.cancel(key)
                counters.unknown_actor += 1
                self._refuse(link, frame, ErrorCode.UNKNOWN_ACTOR, "UnknownActor",
                             f"no actor named {frame.target!r}")
        elif not mailbox.put_nowait(rpc, arrival.decoded_size):
            self.active.cancel(key)
            counters.mailbox_full += 1
            self._refuse(link, frame, ErrorCode.OVERLOADED, "Overloaded",
                         f"the mailbox of {frame.target!r} is full")

    def reject(self, link: PeerLink, frame: Frame) -> None:
        """Tell the caller why its request could not be decoded."""
        if frame.codec not in self._plugins.registry.codec_names() or (
                frame.compressor and frame.compressor not in self._plugins.registry.compressor_names()):
            self._refuse(link, frame, ErrorCode.UNSUPPORTED_CODEC, "UnsupportedCodec",
                         f"codec {frame.codec!r} / compressor {frame.compressor or 'none'!r} "
                         "is not installed here", codec="json")
        else:
            self._refuse(link, frame, ErrorCode.UNDECODABLE, "DecodeError",
                         "the request payload could not be decoded")

    def answer(self, link: PeerLink, request: Frame, key: CallKey, value: object,
               error: BaseException | None) -> None:
        """Send the handler's answer, and remember it for retries."""
        if self._outbox.closed:
            return
        expanded = 0  # error frames are not compressed
        try:
            if error is not None:
                reply = self._error_frame(request, ErrorCode.REMOTE_ERROR,
                                          type(error).__name__, str(error),
                                          self._traceback_of(error))
            else:
                reply, expanded = self._response_frame(request, value)
        except RelayError as exc:
            logger.warning("the reply to request %s cannot be sent: %s", request.request_id,
                           exc, extra={"request_id": request.request_id})
            reply = self._error_frame(request, ErrorCode.REMOTE_ERROR, type(exc).__name__,
                                      str(exc))
        except Exception as exc:  # noqa: BLE001 - a codec's or compressor's bug
            # Counted, and told to the caller in json: the request's codec is the suspect.
            count_internal_error(self._log, link.counters,
                                 f"the reply to request {request.request_id}", exc)
            reply = self._error_frame(request, ErrorCode.REMOTE_ERROR, type(exc).__name__,
                                      f"the reply could not be encoded: {exc}", codec="json")
        # The reply leaves first: remembering it for retries is not on its way
        # (nothing else runs in between, so a retry still finds it).
        try:
            self._outbox.queue(link, reply, expanded)
        finally:
            self.active.finish(key, reply, link)

    def _traceback_of(self, error: BaseException) -> str:
        if not self._config.send_tracebacks:
            return ""
        return "".join(traceback.format_exception(error))

    def _response_frame(self, request: Frame, value: object) -> tuple[bytes, int]:
        """The RESPONSE frame, and what its payload expands to (see ``Outbox.queue``)."""
        plan = self._reply_plans.get((request.codec, request.compressor))
        if plan is None:
            plan = self._plan_replies(request.codec, request.compressor)
        encode_value, compressor, encoders = plan
        payload, used, expanded = encode_payload(encode_value, compressor, value,
                                                 self._config.max_message_size)
        return encoders[used].encode(payload, request.call_id, request.request_id), expanded

    def _plan_replies(self, codec_name: str, compressor_name: str) -> _ReplyPlan:
        """How replies to requests in this codec and compressor are made.

        Keyed by installed plugin names only (the request decoded), so bounded.
        A reply is compressed like its request, or not at all where that does
        not pay: one encoder for each.
        """
        codec = self._plugins.codec(codec_name)
        compressor = self._plugins.compressor(compressor_name)
        encoders = {"": ReplyFrameEncoder(FrameKind.RESPONSE, codec.name, "")}
        if compressor is not None:
            encoders[compressor.name] = ReplyFrameEncoder(FrameKind.RESPONSE, codec.name,
                                                          compressor.name)
        plan = self._reply_plans[(codec_name, compressor_name)] = (codec.encode, compressor,
                                                                   encoders)
        return plan

    def _error_frame(self, request: Frame, code: str, error_type: str, message: str,
                     traceback_text: str = "", codec: str | None = None) -> bytes:
        encoder = self._plugins.codec(codec or request.codec)
        payload = encoder.encode(error_payload(code, error_type, message, traceback_text))
        return encode_frame(Frame(FrameKind.ERROR, encoder.name, payload,
                                  call_id=request.call_id, request_id=request.request_id))

    def _refuse(self, link: PeerLink, request: Frame, code: str, error_type: str, message: str,
                codec: str | None = None) -> None:
        self._outbox.queue(link, self._error_frame(request, code, error_type, message, codec=codec))


class ServedRequest(RpcState):
    """The state of a request from another node: its answer goes back as a RESPONSE or
    ERROR frame over ``link``, the link it came on, and is cached for retries."""

    def __init__(self, server: RequestServer, link: PeerLink, frame: Frame, key: CallKey,
                 deadline: float, clock: Callable[[], float]) -> None:
        super().__init__(frame.request_id or new_request_id(), deadline, None,
                         frame.traceparent, clock, link)
        self._server = server
        self._link = link
        self._frame = frame
        self._key = key

    def deliver(self, value: object, error: BaseException | None) -> None:
        self._server.answer(self._link, self._frame, self._key, value, error)
