"""What an actor receives from a Heph node when its listener says ``heph_with_source``.

Heph's routers are called with each message and the address it came from
(``Route::route(msg, source)``), so a Heph program can answer whoever wrote. A
net-relay listener gives that to its actors as a :class:`HephMessage`: the
message, its source URL, and a reply ref that answers the Heph node in the
form it reads:

- over udp, a heph-json envelope datagram, from the listener's socket to the
  source address (Heph's udp relay reads envelopes from whoever sends them);
- over tcp, a bare message on the very connection the Heph node opened: Heph's
  tcp relay only connects out, and on that connection it reads bare messages
  (serde_json's ``StreamDeserializer`` of its message type), not envelopes.

Why a value around the message rather than a second argument or a context
field: an actor reads one message at a time from its mailbox, and a mailbox
holds values, so the source has to travel with the message; and it is opt-in
per listener, so actors written for the bare message keep getting it. Why the
reply is an :class:`~relay_core.ActorRef`: it is held, passed on and sent to
like any ref (a router actor can hand it to a worker); ``rpc`` on it raises
``ConfigError``, since Heph's format has no requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Coroutine
from typing import Any, TypeVar, overload

from ..config.address import endpoint_url
from ..interfaces import HostPort
from .actors import DEFAULT_RPC_TIMEOUT, ActorRef
from .linking import Links
from .links import PeerLink
from .request_ids import request_id_for_call
from .sending import Sender

__all__ = ["HephMessage", "HephReplies", "HephReply"]

Reply = TypeVar("Reply")


class HephReply(ActorRef):
    """A ref to the Heph node a message came from: what is sent goes back in Heph's form
    (an envelope datagram over udp, a bare message on its connection over tcp)."""

    __slots__ = ("_link", "_sender")

    def __init__(self, sender: Sender, link: PeerLink) -> None:
        self._sender = sender
        self._link = link

    @property
    def address(self) -> str:
        """The Heph node's URL, such as ``udp://127.0.0.1:9002``."""
        return self._link.label

    def send(self, message: object) -> Coroutine[Any, Any, None]:
        """Answer with ``message``; waits while the connection's queue is full (tcp).

        Raises ``EncodeError`` for what Heph cannot read (docs/heph.md). A reply over a
        tcp connection the Heph node has closed is counted ``send_errors`` and logged.
        """
        # Heph's formats name no actor: the Heph node's router chooses.
        return self._sender.send_when_awaited(self._link, "", message)

    def try_send(self, message: object) -> None:
        """Answer without waiting; ``LinkBusy`` while the connection's queue is full."""
        self._sender.try_send(self._link, "", message)

    @overload
    async def rpc(self, request: object, *, timeout: float = ..., request_id: str | None = ...,
                  retries: int = ..., expect: None = ...) -> object: ...
    @overload
    async def rpc(self, request: object, *, timeout: float = ..., request_id: str | None = ...,
                  retries: int = ..., expect: type[Reply]) -> Reply: ...

    async def rpc(self, request: object, *, timeout: float = DEFAULT_RPC_TIMEOUT,
                  request_id: str | None = None, retries: int = 0,
                  expect: type[Reply] | None = None) -> object:
        """Refused with ``ConfigError``: Heph's format has no requests."""
        return await self._sender.call(self._link, "", request, timeout,
                                       request_id_for_call(request_id), retries)


@dataclasses.dataclass(frozen=True, slots=True)
class HephMessage:
    """A message from a Heph node, with where it came from and a ref that answers there.

    Delivered instead of the bare message by a listener with ``heph_with_source =
    true`` (docs/heph.md).
    """

    message: object
    """The message, as the bare-message form would deliver it (a JSON value)."""
    source: str
    """Where it came from: ``udp://HOST:PORT`` (the Heph node's socket) or
    ``tcp://HOST:PORT`` (the connection it opened)."""
    reply: ActorRef
    """Sends back to that Heph node (udp: an envelope datagram to the source; tcp: a bare
    message on that connection); ``rpc`` raises ``ConfigError``."""


class HephReplies:
    """Makes the :class:`HephMessage` for a message from a Heph source."""

    __slots__ = ("_links", "_sender")

    def __init__(self, sender: Sender, links: Links) -> None:
        self._sender = sender
        self._links = links

    def message(self, message: object, scheme: str, source: HostPort) -> HephMessage:
        link = self._links.heph_reply_link(scheme, source)
        return HephMessage(message, endpoint_url(scheme, source), HephReply(self._sender, link))
