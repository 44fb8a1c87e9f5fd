"""Sending on links: what ``RemoteRef.send``, ``try_send``, ``rpc`` and the CLI's ``send`` run.

A message is encoded at once, so ``send`` raises for what the sender can know
(a message too large, a peer that could not be reached or was found
unreachable, a codec error), then framed and queued on its link's
:class:`~relay_core.runtime.outbox.Outbox`. An awaited send waits while the
link is being prepared or its transport's queue is full, the way a local send
waits for room in a mailbox; ``try_send`` raises ``LinkBusy`` instead. A call
reserves a call id and a future (:class:`~relay_core.runtime.calls.PendingCalls`),
sends its request, and waits for the reply at most its timeout; with retries,
the same request goes again when a share of the time passes unanswered.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from typing import Final

from ..config.address import Address
from ..errors import ConfigError, LinkBusy, RpcTimeout, TransportError
from ..observe.tracing import outgoing_traceparent
from ..protocol.outgoing import encode_payload
from ..protocol.wire import NO_DEADLINE
from .calls import PendingCalls
from .linking import Links, cannot_reach
from .links import PeerLink
from .outbox import Outbox

__all__ = ["Sender"]

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


class Sender:
    def __init__(self, links: Links, outbox: Outbox, calls: PendingCalls,
                 backlog_limit: int) -> None:
        self._links = links
        self._outbox = outbox
        self._calls = calls
        self._backlog_limit = backlog_limit
        """How much may wait on a link still being prepared before ``try_send`` refuses."""

    def link(self, address: Address, peer: str | None = None) -> PeerLink:
        """The link to ``address``, made (and its destination prepared) on first use."""
        return self._links.link(address, peer)

    def send(self, link: PeerLink, target: str, message: object) -> None:
        """Encode ``message`` for ``target`` and queue it; raise for what is known now."""
        if link.error is not None:
            raise cannot_reach(link)
        if link.unreachable is not None:
            self._refuse_while_unreachable(link)
        frame, expanded = link.out.message(target, message)
        self._outbox.queue(link, frame, expanded)
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
        if link.preparing is not None and link.out.queued_bytes >= self._backlog_limit:
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
        while (full := link.full) is not None and not self._outbox.closed:
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
        out = link.out
        if not out.takes_requests:
            raise ConfigError(f"{link.label} speaks heph-json, which has no requests: use send, "
                              "or the net-relay format for RPC")
        payload, compressor, expanded = encode_payload(out.encode_value, out.compressor, request,
                                                       out.max_message_size)
        encoder = out.request_encoder(target, compressor)
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
        return (destination is not None and not link.out
                and link.transport.waiting(destination) == 0)

