"""Actors: async functions with a bounded mailbox, and the refs that reach them.

An actor is ``async def actor(ctx)`` reading ``async for msg in ctx``. It gets
plain messages and :class:`Rpc` objects. A :class:`LocalRef` and a
:class:`RemoteRef` have the same interface, so code that holds a ref does not
care where the actor lives.

Lifecycle (the rules this module keeps):
- an actor that returns ends normally; one that raises is logged and, with
  ``restart="on-error"``, started again on the same mailbox, at most
  ``max_restarts`` times within ``restart_window`` seconds;
- a request the actor was handling when it raised, still unanswered, fails
  with that exception, so its caller gets ``RemoteError`` rather than a timeout;
- stopping closes the mailbox: no new messages get in, queued ones are still
  delivered (``async for`` ends when the mailbox is empty), and after the grace
  period the actor's task is cancelled; whatever is still queued then is
  discarded and queued requests fail with ``ActorStopped``.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Literal, Protocol, TypeVar, overload

from ..config.address import Address
from ..errors import ActorStopped, MailboxFull, RemoteError, RpcTimeout, UnexpectedReply
from ..observe.tracing import outgoing_traceparent
from .links import PeerLink
from .mailbox import Mailbox
from .request_ids import request_id_for_call
from .rpc import Rpc
from .sending import Sender

__all__ = ["ActorRef", "LocalRef", "RemoteRef", "RestartPolicy", "Supervisor"]

logger = logging.getLogger("relay_core.actors")

RestartPolicy = Literal["never", "on-error"]
DEFAULT_RPC_TIMEOUT = 5.0
Reply = TypeVar("Reply")


def _check_call(timeout: float, retries: int) -> None:
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries!r}")


def _check_expect(expect: object) -> None:
    if not isinstance(expect, type):
        raise TypeError(f"expect must be a class, such as a @message dataclass, dict or int; "
                        f"got {expect!r}")


def _expected(reply: object, expect: type[Reply], address: str) -> Reply:
    if isinstance(reply, expect):
        return reply
    raise UnexpectedReply(reply, expect, address)


async def _expecting(call: Coroutine[Any, Any, object], expect: type[Reply], address: str
                     ) -> Reply:
    return _expected(await call, expect, address)


class ActorRef(abc.ABC):
    """A handle for sending to an actor, wherever it runs."""

    @property
    @abc.abstractmethod
    def address(self) -> str:
        """The actor's URL, or its bare name for a local actor."""

    @abc.abstractmethod
    async def send(self, message: object) -> None:
        """Deliver ``message``; waits while a local mailbox is full, or while the queue of
        a stream link (tcp, quic streams) to a remote actor is full."""

    @abc.abstractmethod
    def try_send(self, message: object) -> None:
        """Deliver ``message`` without waiting; ``MailboxFull`` if it cannot be queued now
        (``LinkBusy``, a kind of ``MailboxFull``, for a stream link's full queue)."""

    @overload
    async def rpc(self, request: object, *, timeout: float = ..., request_id: str | None = ...,
                  retries: int = ..., expect: None = ...) -> object: ...
    @overload
    async def rpc(self, request: object, *, timeout: float = ..., request_id: str | None = ...,
                  retries: int = ..., expect: type[Reply]) -> Reply: ...

    @abc.abstractmethod
    async def rpc(
        self,
        request: object,
        *,
        timeout: float = DEFAULT_RPC_TIMEOUT,
        request_id: str | None = None,
        retries: int = 0,
        expect: type[Reply] | None = None,
    ) -> object:
        """Send a request and return the reply, or raise an ``RpcError``.

        ``request_id`` defaults to the id of the request being handled (so nested
        calls share it) or a new random one. ``retries`` resends the request
        (same id) when a share of the timeout passes without a reply; the remote
        node runs it at most once. Local delivery cannot be lost, so a local
        ref ignores ``retries``. With ``expect=T`` (a class) the reply is a ``T``,
        typed so, or the call raises ``UnexpectedReply``; without it the reply is
        whatever came, unchecked.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address}>"


class LocalRef(ActorRef):
    __slots__ = ("_mailbox", "_name")

    def __init__(self, name: str, mailbox: Mailbox) -> None:
        self._name = name
        self._mailbox = mailbox

    @property
    def address(self) -> str:
        return self._name

    async def send(self, message: object) -> None:
        await self._mailbox.put(message)

    def try_send(self, message: object) -> None:
        if not self._mailbox.put_nowait(message):
            raise MailboxFull(
                f"the mailbox of {self._name!r} is full ({self._mailbox.capacity} messages)"
            )

    @overload
    async def rpc(self, request: object, *, timeout: float = ..., request_id: str | None = ...,
                  retries: int = ..., expect: None = ...) -> object: ...
    @overload
    async def rpc(self, request: object, *, timeout: float = ..., request_id: str | None = ...,
                  retries: int = ..., expect: type[Reply]) -> Reply: ...

    async def rpc(
        self,
        request: object,
        *,
        timeout: float = DEFAULT_RPC_TIMEOUT,
        request_id: str | None = None,
        retries: int = 0,
        expect: type[Reply] | None = None,
    ) -> object:
        _check_call(timeout, retries)
        if expect is not None:
            _check_expect(expect)
            return _expected(await self._call(request, timeout, request_id), expect, self._name)
        return await self._call(request, timeout, request_id)

    async def _call(self, request: object, timeout: float, request_id: str | None) -> object:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[object] = loop.create_future()
        request_id = request_id_for_call(request_id)

        def answer(value: object, error: BaseException | None) -> None:
            if reply.done():
                return
            if error is None:
                reply.set_result(value)
            else:
                remote = RemoteError(type(error).__name__, str(error))
                remote.__cause__ = error
                reply.set_exception(remote)

        rpc = Rpc(request, request_id, loop.time() + timeout, answer, outgoing_traceparent(),
                  loop.time)
        try:
            async with asyncio.timeout(timeout):
                await self._mailbox.put(rpc)
                return await reply
        except TimeoutError:
            raise RpcTimeout(
                f"no reply from {self._name!r} within {timeout:g} s (request id {request_id})"
            ) from None
        finally:
            rpc.cancel()


class RemoteRef(ActorRef):
    """An actor on another node, reached through the node's sender."""

    __slots__ = ("_link", "_sender", "_target")

    def __init__(self, sender: Sender, address: Address, peer: str | None) -> None:
        self._target = address
        self._sender = sender
        self._link: PeerLink = sender.link(address, peer)

    @property
    def address(self) -> str:
        return str(self._target)

    def send(self, message: object) -> Coroutine[Any, Any, None]:
        # Not a coroutine itself: the sender's compiled one is handed back,
        # which costs a fraction of an interpreted coroutine per message.
        link = self._link if self._link.error is None else self._current_link()
        return self._sender.send_when_awaited(link, self._target.actor, message)

    def try_send(self, message: object) -> None:
        """Send without waiting; ``LinkBusy`` while a stream link's queue is full."""
        self._sender.try_send(self._current_link(), self._target.actor, message)

    @overload
    def rpc(self, request: object, *, timeout: float = ..., request_id: str | None = ...,
            retries: int = ..., expect: None = ...) -> Coroutine[Any, Any, object]: ...
    @overload
    def rpc(self, request: object, *, timeout: float = ..., request_id: str | None = ...,
            retries: int = ..., expect: type[Reply]) -> Coroutine[Any, Any, Reply]: ...

    def rpc(
        self,
        request: object,
        *,
        timeout: float = DEFAULT_RPC_TIMEOUT,
        request_id: str | None = None,
        retries: int = 0,
        expect: type[Reply] | None = None,
    ) -> Coroutine[Any, Any, object]:
        # Not a coroutine itself: handing back the sender's saves a frame
        # on every resume, which showed with many calls in flight. The checks
        # and the link are inlined for the common case: a call each is a frame.
        # Only a call with ``expect`` pays for a checking coroutine around it.
        if not (timeout > 0 and retries >= 0):
            _check_call(timeout, retries)
        if expect is not None:
            _check_expect(expect)
        request_id = request_id_for_call(request_id)
        link = self._link if self._link.error is None else self._current_link()
        call = self._sender.call(link, self._target.actor, request, timeout, request_id,
                                 retries)
        if expect is None:
            return call
        return _expecting(call, expect, str(self._target))

    async def wait_sent(self, limit: float) -> None:
        """Wait until what was sent through this ref has left the node, at most ``limit``
        seconds; raise PeerUnreachable if its peer was found unreachable meanwhile."""
        await self._sender.wait_sent(self._link, limit)

    def _current_link(self) -> PeerLink:
        # A link whose destination failed to resolve is replaced, so a later
        # send retries instead of failing forever.
        if self._link.error is not None:
            self._link = self._sender.link(self._target)
        return self._link


class RunContext(Protocol):
    """What a supervisor needs of the context it hands its actor function."""

    @property
    def current(self) -> object:
        """The message most recently received."""


Context = TypeVar("Context", bound=RunContext)


class Supervisor(Generic[Context]):
    """Runs one actor function, restarts it by policy, and cleans up after it.

    Each run gets a fresh context from ``make_context`` (the node makes an
    :class:`~relay_core.ActorContext`, which names the node).
    """

    def __init__(
        self,
        make_context: Callable[[str, LocalRef, Mailbox], Context],
        function: Callable[[Context], Awaitable[None]],
        name: str,
        mailbox: Mailbox,
        restart: RestartPolicy,
        max_restarts: int,
        restart_window: float,
        on_exit: Callable[[str], None],
    ) -> None:
        if restart not in ("never", "on-error"):
            raise ValueError(f"restart must be 'never' or 'on-error', got {restart!r}")
        self.name = name
        self.mailbox = mailbox
        self.ref = LocalRef(name, mailbox)
        self._make_context = make_context
        self._function = function
        self._restart = restart
        self._max_restarts = max_restarts
        self._restart_window = restart_window
        self._on_exit = on_exit
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"actor:{name}")

    async def stop(self, grace: float) -> None:
        """Close the mailbox, let the actor finish within ``grace`` seconds, then cancel it."""
        self.mailbox.close()
        if self.task.done():
            return
        done, _ = await asyncio.wait({self.task}, timeout=grace)
        if not done:
            logger.warning("actor %r did not stop within %g s; cancelling it", self.name, grace)
            self.task.cancel()
            await asyncio.wait({self.task})

    async def _run(self) -> None:
        # The function is awaited here, not in a helper coroutine: every message
        # resumes each frame between the task and the actor, so one fewer pays.
        failures: deque[float] = deque()
        try:
            while True:
                context = self._make_context(self.name, self.ref, self.mailbox)
                try:
                    await self._function(context)
                    return
                except Exception as exc:
                    logger.exception("actor %r failed", self.name)
                    _fail_unanswered(context, exc)
                if not self._may_restart(failures):
                    return
                logger.info("restarting actor %r", self.name)
        finally:
            self._finish()

    def _may_restart(self, failures: deque[float]) -> bool:
        if self._restart != "on-error" or self.mailbox.closed:
            return False
        now = time.monotonic()
        failures.append(now)
        while failures and failures[0] < now - self._restart_window:
            failures.popleft()
        if len(failures) > self._max_restarts:
            logger.error(
                "actor %r failed %d times within %g s; not restarting it",
                self.name,
                len(failures),
                self._restart_window,
            )
            return False
        return True

    def _finish(self) -> None:
        self.mailbox.close()
        for message in self.mailbox.drain():
            if isinstance(message, Rpc) and not message.answered:
                message.fail(ActorStopped(f"actor {self.name!r} stopped"))
        self._on_exit(self.name)


def _fail_unanswered(context: RunContext, error: Exception) -> None:
    """Fail the request a failed run was handling, unless it was answered."""
    current = context.current
    if isinstance(current, Rpc) and not current.answered:
        current.fail(error)
