"""The Node: what a program holds to host actors and reach other nodes.

It ties the layers together: the plugin registry and config (validated at
construction), the dispatcher (transports, links, frames), and the local
actors with their supervisors, and the context (:class:`ActorContext`) each
actor function is given, which names the node. Every Node has its own
registry; nothing is global.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from types import MappingProxyType, TracebackType
from typing import Any, Self

from ..config.address import format_host_port, parse_address
from ..config.node_config import NodeConfig
from ..config.paths import resolve_paths
from ..config.security import NODE_PEER_KEYS, transport_options
from ..errors import ActorExists, ActorStopped, ConfigError, InvalidAddress
from ..observe.metrics import MetricsExporter
from ..observe.snapshot import NodeStats
from ..plugins.registry import PluginRegistry
from .actors import ActorRef, LocalRef, RemoteRef, RestartPolicy, Supervisor
from .dispatcher import Dispatcher
from .mailbox import Inbox, Mailbox
from .rpc import Rpc

__all__ = ["STATS_ACTOR", "SYSTEM_PREFIX", "ActorContext", "ActorFunction", "Node", "Router"]

SYSTEM_PREFIX = "$"
"""Actor names starting with this belong to the node (system and anonymous actors)."""
STATS_ACTOR = "$stats"
"""Answers an RPC with the node's counters (``net-relay stats``)."""


class ActorContext:
    """What an actor function gets: its name, ref and node, and its messages."""

    def __init__(self, name: str, ref: LocalRef, node: Node, mailbox: Mailbox) -> None:
        self.name = name
        self.ref = ref
        self.node = node
        self._inbox = Inbox(mailbox)

    @property
    def current(self) -> object:
        """The message most recently received."""
        return self._inbox.current

    def __aiter__(self) -> Inbox:
        return self._inbox

    def __anext__(self) -> Coroutine[Any, Any, object]:
        return self._inbox.__anext__()

    async def receive(self) -> object:
        """The next message; ``ActorStopped`` once the actor is stopping and nothing is left."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise ActorStopped("the actor is stopping and its mailbox is empty") from None


ActorFunction = Callable[[ActorContext], Awaitable[None]]


async def stats_actor(ctx: ActorContext) -> None:
    """Answers every RPC with this node's counters, as plain data."""
    async for message in ctx:
        if isinstance(message, Rpc):
            node = ctx.node
            snapshot = node.stats()
            message.respond({"node": node.name, "incarnation": f"{node.incarnation:016x}",
                             "total": snapshot.total, "peers": snapshot.peers,
                             "faults": snapshot.faults, "senders": snapshot.senders,
                             "receive_drops": snapshot.receive_drops})

logger = logging.getLogger("relay_core.node")

Router = Callable[[object, str], object]
"""Called with (message, source URL) for names with no local actor; may be async."""


class Node:
    """A process's place in the relay: ``async with Node(config) as node: ...``."""

    def __init__(
        self, config: NodeConfig | None = None, *, registry: PluginRegistry | None = None
    ) -> None:
        self.config = config if config is not None else NodeConfig()
        self.registry = registry if registry is not None else PluginRegistry.load()
        # An installed plugin that is broken, or a name two of them claim, is told as such.
        self.registry.check_available(self.config.plugin_uses(), self.config.source)
        self.config.validate_plugins(
            codecs=self.registry.codec_names(),
            compressors=self.registry.compressor_names(),
            transports=self.registry.transport_schemes(),
        )
        self._actors: dict[str, Supervisor[ActorContext]] = {}
        self._mailboxes: dict[str, Mailbox] = {}
        self._mailbox_view = MappingProxyType(self._mailboxes)
        try:
            self._dispatcher = Dispatcher(self.config, self.registry, self)
        except ConfigError as exc:  # a listener's heph_json keys, read there, name their table
            if self.config.source is None or str(exc).startswith(self.config.source):
                raise
            raise type(exc)(f"{self.config.source}: {exc}") from None
        # Every configured plugin is made now, so that a bad option stops the node here.
        self._dispatcher.make_configured_plugins()
        try:
            self._check_peer_options()
        except ConfigError as exc:
            if self.config.source is None:
                raise
            raise type(exc)(f"{self.config.source}: {exc}") from None
        self._router: Router | None = None
        self._router_tasks: set[asyncio.Future[object]] = set()
        self._anonymous = itertools.count(1)
        self._started = False
        self._closed = False
        self._metrics: MetricsExporter | None = None
        self._metrics_address: tuple[str, int] | None = None

    def _check_peer_options(self) -> None:
        """Peer transport options are checked now, not at first use."""
        for name, peer in self.config.peers.items():
            transport = self.registry.transport_class(peer.parsed.scheme)
            options = resolve_paths(transport_options(peer.options, NODE_PEER_KEYS),
                                    transport.path_options, self.config.directory)
            transport.check_peer_options(options, f"peers.{name}")
            if "fallback" in peer.options:
                self._check_fallback(name, peer.options["fallback"])

    def _check_fallback(self, peer: str, fallback: object) -> None:
        where = f"[peers.{peer}] fallback = {fallback!r}"
        if not isinstance(fallback, str):
            raise ConfigError(f"{where}: must be a node URL such as \"tcp://HOST:PORT\"")
        address = parse_address(fallback, forbid_actor=True)
        if not self.registry.transport_class(address.scheme).reliable:
            raise ConfigError(f"{where}: the fallback must use a stream transport "
                              "(tcp://, or quic:// in stream mode)")

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def incarnation(self) -> int:
        """Random per Node instance; peers use it to tell a restart from a replay."""
        return self._dispatcher.incarnation

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the configured listeners."""
        if self._started:
            return
        self._started = True
        try:
            await self._dispatcher.start()
        except BaseException as exc:
            await self._dispatcher.close()
            if isinstance(exc, ConfigError) and self.config.source is not None \
                    and not str(exc).startswith(self.config.source):
                # A listener's own check (a missing certificate) names its table; say the file.
                raise type(exc)(f"{self.config.source}: {exc}") from None
            raise
        if self.config.expose_stats:
            self._spawn_system(stats_actor, STATS_ACTOR)
        if self.config.metrics_port is not None:
            self._metrics = MetricsExporter(self.stats, self.name, host=self.config.metrics_host,
                                            port=self.config.metrics_port)
            self._metrics_address = await self._metrics.start()
        logger.info("node %r started (incarnation %016x)", self.name, self.incarnation)

    async def close(self, grace: float = 5.0) -> None:
        """Stop every actor (each gets ``grace`` seconds to drain), flush, close transports."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(actor.stop(grace) for actor in list(self._actors.values())))
        if self._metrics is not None:
            await self._metrics.close()
        for task in self._router_tasks:
            task.cancel()
        await self._dispatcher.close(grace)
        logger.info("node %r closed", self.name)

    def spawn(
        self,
        function: ActorFunction,
        *,
        name: str | None = None,
        mailbox_size: int | None = None,
        mailbox_bytes: int | None = None,
        restart: RestartPolicy = "never",
        max_restarts: int = 3,
        restart_window: float = 60.0,
    ) -> ActorRef:
        """Start ``function`` as an actor and return its ref."""
        if self._closed:
            raise ActorStopped("the node is closed")
        if name is not None and name.startswith(SYSTEM_PREFIX):
            raise ValueError(f"actor names starting with {SYSTEM_PREFIX!r} are reserved for the "
                             f"node itself; got {name!r}")
        name = name if name is not None else f"{SYSTEM_PREFIX}{next(self._anonymous)}"
        if name in self._actors:
            raise ActorExists(f"an actor named {name!r} already runs on node {self.name!r}")
        capacity = mailbox_size if mailbox_size is not None else self.config.mailbox_size
        if capacity < 1:
            raise ValueError(f"mailbox_size must be >= 1, got {capacity}")
        max_bytes = mailbox_bytes if mailbox_bytes is not None else self.config.mailbox_bytes
        if max_bytes < 1:
            raise ValueError(f"mailbox_bytes must be >= 1, got {max_bytes}")
        supervisor = Supervisor(
            self._context,
            function,
            name,
            Mailbox(capacity, max_bytes=max_bytes, shared=self._dispatcher.buffered),
            restart,
            max_restarts,
            restart_window,
            self._actor_exited,
        )
        self._add(supervisor)
        return supervisor.ref

    def _spawn_system(self, function: ActorFunction, name: str) -> None:
        mailbox = Mailbox(64, max_bytes=self.config.mailbox_bytes,
                          shared=self._dispatcher.buffered)
        supervisor = Supervisor(self._context, function, name, mailbox, "on-error", 3, 60.0,
                                self._actor_exited)
        self._add(supervisor)

    def _context(self, name: str, ref: LocalRef, mailbox: Mailbox) -> ActorContext:
        return ActorContext(name, ref, self, mailbox)

    def _add(self, supervisor: Supervisor[ActorContext]) -> None:
        self._actors[supervisor.name] = supervisor
        self._mailboxes[supervisor.name] = supervisor.mailbox

    async def stop(self, name: str, grace: float = 5.0) -> None:
        """Stop the local actor ``name`` (see the lifecycle rules in the actors module)."""
        supervisor = self._actors.get(name)
        if supervisor is not None:
            await supervisor.stop(grace)

    def ref(self, target: str) -> ActorRef:
        """A ref from a URL (``udp://host:port/actor``), ``peer/actor``, or a local name."""
        if "://" in target:
            return RemoteRef(self._dispatcher.sender, parse_address(target, require_actor=True),
                             None)
        peer_name, slash, actor = target.partition("/")
        if slash:
            peer = self.config.peers.get(peer_name)
            if peer is None:
                known = ", ".join(sorted(self.config.peers)) or "none configured"
                raise InvalidAddress(f"{target!r}: no peer named {peer_name!r} (peers: {known})")
            address = parse_address(f"{peer.address}/{actor}", require_actor=True)
            return RemoteRef(self._dispatcher.sender, address, peer_name)
        supervisor = self._actors.get(target)
        if supervisor is None:
            raise ConfigError(
                f"no local actor named {target!r}; use SCHEME://HOST:PORT/ACTOR "
                "or PEER/ACTOR for a remote one"
            )
        return supervisor.ref

    def route(self, router: Router | None) -> None:
        """Install (or with None remove) the fallback for names with no local actor."""
        self._router = router

    @property
    def metrics_address(self) -> str | None:
        """``http://HOST:PORT/metrics`` when the node serves Prometheus metrics, else None."""
        if self._metrics_address is None:
            return None
        return f"http://{format_host_port(*self._metrics_address)}/metrics"

    def address(self, scheme: str = "udp") -> str:
        """The URL a listener actually bound, e.g. ``udp://127.0.0.1:40123``."""
        return self._dispatcher.address(scheme)

    def stats(self) -> NodeStats:
        return self._dispatcher.snapshot()

    # -- what the dispatcher asks of us (LocalActors) --------------------

    @property
    def mailboxes(self) -> Mapping[str, Mailbox]:
        """Each local actor's mailbox by name, read-only and always current."""
        return self._mailbox_view

    def deliver_unrouted(self, message: object, source: str) -> bool:
        router = self._router
        if router is None:
            return False
        try:
            result = router(message, source)
        except Exception:
            logger.exception("the router failed on a message from %s", source)
            return True
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._router_tasks.add(task)
            task.add_done_callback(self._router_done)
        return True

    def _router_done(self, task: asyncio.Future[object]) -> None:
        self._router_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("the router failed", exc_info=task.exception())

    def _actor_exited(self, name: str) -> None:
        self._actors.pop(name, None)
        self._mailboxes.pop(name, None)
