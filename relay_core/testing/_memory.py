"""An in-process transport for tests: packets move between objects, never through a socket.

A :class:`MemoryNetwork` is a shared "network" that :class:`MemoryTransport`
instances join. It has one host name (``memory-host`` unless told otherwise, a
valid host in URLs and ``[listen.memory]`` tables) and hands out ports, so
addresses look and behave like real ones: ``memory://memory-host:49152/echo``.

Rules this module keeps:

- Delivery is asynchronous, like a real network: ``send`` copies the packet
  and returns; the receiver's ``events.packet_received`` runs in a later turn
  of the event loop (``loop.call_soon``), so packets arrive in the order they
  were sent.
- A transport sends from its first address: the first port it listened on, or
  else a port the network hands it at its first :meth:`MemoryTransport.prepare`.
  A reply to the source a receiver saw therefore reaches the sender.
- A packet for a port nobody holds is lost, and the sender hears of it through
  ``events.send_failed``, as a UDP sender hears of an ICMP "port unreachable".
- ``reliable`` is a declaration the network makes for its transports (the node
  then trusts it never to lose, reorder or duplicate); delivery itself is the
  same either way. Faults are not simulated here.

Everything runs on one event loop: the one that was running when a transport
first listened or prepared.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Mapping, Sequence
from typing import ClassVar

from ..config.address import format_host_port, host_problem
from ..errors import ConfigError, MessageTooLarge, TransportError
from ..hookspecs import hookimpl
from ..interfaces import HostPort, PluginOption, Transport, TransportEvents

__all__ = ["MemoryNetwork", "MemoryTransport", "memory_plugin"]

DEFAULT_HOST = "memory-host"
DEFAULT_MAX_PACKET_SIZE = 16 * 1024 * 1024 + 64 * 1024
"""Covers the node's default ``max_message_size`` (16 MiB) plus framing."""
DEFAULT_BATCH_SIZE = 64 * 1024
_FIRST_EPHEMERAL_PORT = 49152  # the IANA dynamic range, so ports look like the OS's
_PORTS = 65536


class MemoryNetwork:
    """A shared in-process network; every transport made by :attr:`transport_class` joins it."""

    def __init__(self, *, reliable: bool = True, host: str = DEFAULT_HOST) -> None:
        if not isinstance(reliable, bool):
            raise ConfigError(f"MemoryNetwork reliable = {reliable!r} is not allowed: True or False")
        problem = host_problem(host) if isinstance(host, str) else "it is not a str"
        if problem:
            raise ConfigError(f"MemoryNetwork host {host!r} is not allowed: {problem}")
        self.reliable = reliable
        self.host = host
        self._holders: dict[int, MemoryTransport] = {}
        self._next_port = _FIRST_EPHEMERAL_PORT
        self._transport_class: type[MemoryTransport] | None = None

    def __repr__(self) -> str:
        return f"<MemoryNetwork {self.host} reliable={self.reliable} ports={sorted(self._holders)}>"

    @property
    def transport_class(self) -> type[MemoryTransport]:
        """The ``memory`` transport class bound to this network (one class per network)."""
        if self._transport_class is None:
            namespace = {"network": self, "reliable": self.reliable, "__module__": __name__}
            self._transport_class = type("MemoryTransport", (MemoryTransport,), namespace)
        return self._transport_class

    def addresses(self) -> list[HostPort]:
        """Every address some open transport holds, in port order."""
        return [(self.host, port) for port in sorted(self._holders)]

    def bind(self, transport: MemoryTransport, host: str, port: int) -> HostPort:
        """Give ``transport`` host:port (port 0: a free one); raise TransportError if taken."""
        where = format_host_port(host, port)
        if host != self.host:
            raise TransportError(errno.EADDRNOTAVAIL, f"cannot listen on memory {where}: "
                                 f"this memory network has the one host {self.host!r}")
        if port == 0:
            port = self._free_port(where)
        elif port in self._holders:
            raise TransportError(errno.EADDRINUSE,
                                 f"cannot listen on memory {where}: the port is taken")
        self._holders[port] = transport
        return (host, port)

    def unbind(self, address: HostPort) -> None:
        """Release an address, so packets for it are lost from now on."""
        self._holders.pop(address[1], None)

    def deliver(self, sender: MemoryTransport, source: HostPort, destination: HostPort,
                packet: bytes) -> None:
        """Schedule ``packet`` for the holder of ``destination``, or a failure for ``sender``."""
        holder = self._holders.get(destination[1]) if destination[0] == self.host else None
        if holder is None:
            text = f"memory {format_host_port(*destination)}: no transport holds that address"
            sender.report_later(destination, TransportError(errno.ECONNREFUSED, text))
            return
        holder.arrive_later(packet, source)

    def _free_port(self, where: str) -> int:
        for _ in range(_PORTS):
            port = self._next_port
            self._next_port = port + 1 if port + 1 < _PORTS else 1
            if port not in self._holders:
                return port
        raise TransportError(errno.EADDRINUSE, f"cannot listen on memory {where}: no free port")


class MemoryTransport(Transport):
    """Packets between transports of one :class:`MemoryNetwork`, in order, within the process.

    Use a network's bound class (``MemoryNetwork().transport_class``); this base
    class belongs to no network. Options: ``max_packet_size`` (default 16 MiB +
    64 KiB) and ``batch_size`` (default 64 KiB).
    """

    scheme = "memory"
    reliable: ClassVar[bool] = True
    network: ClassVar[MemoryNetwork | None] = None
    """The network this class's transports join; set on the class a network makes."""
    options: ClassVar[tuple[PluginOption, ...] | None] = (
        PluginOption("max_packet_size", "integer", DEFAULT_MAX_PACKET_SIZE,
                     "The largest packet sent, in bytes; 64..2**32."),
        PluginOption("batch_size", "integer", DEFAULT_BATCH_SIZE,
                     "Frames are coalesced into packets up to this size; 64..max_packet_size."),
    )

    def __init__(self, events: TransportEvents, *, max_packet_size: int = DEFAULT_MAX_PACKET_SIZE,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        super().__init__(events)
        network = type(self).network
        if network is None:
            raise ConfigError("MemoryTransport is not bound to a network: make transports with "
                              "MemoryNetwork().transport_class, or register memory_plugin(network)")
        self._network = network
        self.max_packet_size = _size("max_packet_size", max_packet_size, 64, 1 << 32)
        self.batch_size = _size("batch_size", batch_size, 64, self.max_packet_size)
        self._addresses: list[HostPort] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def listen(self, host: str, port: int) -> HostPort:
        """Hold host:port on the network (port 0 picks a free one); return it."""
        self._check_open(f"cannot listen on memory {format_host_port(host, port)}")
        _check_port(host, port, 0)
        return self._bind(host, port)

    async def prepare(self, host: str, port: int,
                      options: Mapping[str, object] | None = None) -> HostPort:
        """Check host:port names this network, and take a port to send from if we hold none.

        Memory peers take no ``options`` (the inherited ``check_peer_options``
        refuses any).
        """
        where = format_host_port(host, port)
        self._check_open(f"cannot prepare memory {where}")
        _check_port(host, port, 1)
        if host != self._network.host:
            raise TransportError(errno.EHOSTUNREACH, f"cannot reach memory {where}: this memory "
                                 f"network has the one host {self._network.host!r}")
        if not self._addresses:
            self._bind(self._network.host, 0)
        return (host, port)

    def send(self, destination: HostPort, packet: bytes) -> None:
        """Copy ``packet`` and schedule its arrival at ``destination``."""
        if len(packet) > self.max_packet_size:
            raise MessageTooLarge(len(packet), self.max_packet_size,
                                  "raise [listen.memory] max_packet_size to allow it")
        where = format_host_port(*destination)
        self._check_open(f"cannot send to memory {where}")
        if not self._addresses:
            raise TransportError(f"cannot send to memory {where}: this transport holds no "
                                 "address; call listen() or prepare() before sending")
        self._network.deliver(self, self._addresses[0], destination, bytes(packet))

    async def close(self) -> None:
        """Release every address; packets still on their way to this transport are lost."""
        if self._closed:
            return
        self._closed = True
        for address in self._addresses:
            self._network.unbind(address)
        self._addresses.clear()

    def arrive_later(self, packet: bytes, source: HostPort) -> None:
        """Hand ``packet`` to this transport's events in a later turn of its loop."""
        assert self._loop is not None, "a transport holds an address only once it has a loop"
        self._loop.call_soon(self._arrive, packet, source)

    def report_later(self, destination: HostPort, error: TransportError) -> None:
        """Report a lost packet through ``events.send_failed`` in a later turn of the loop."""
        assert self._loop is not None, "only a transport holding an address sends"
        self._loop.call_soon(self._report, destination, error)

    def _arrive(self, packet: bytes, source: HostPort) -> None:
        if not self._closed:
            self.events.packet_received(packet, source)

    def _report(self, destination: HostPort, error: TransportError) -> None:
        if not self._closed:
            self.events.send_failed(destination, error)

    def _bind(self, host: str, port: int) -> HostPort:
        self._loop = self._loop or asyncio.get_running_loop()
        address = self._network.bind(self, host, port)
        self._addresses.append(address)
        return address

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise TransportError(errno.ESHUTDOWN, f"{what}: the transport is closed")


class _MemoryPlugin:
    """A plugin object whose hook provides one network's ``memory`` transport class."""

    def __init__(self, network: MemoryNetwork) -> None:
        self.network = network

    def __repr__(self) -> str:
        return f"memory_plugin({self.network!r})"

    @hookimpl
    def net_relay_transports(self) -> Sequence[type[Transport]]:
        return [self.network.transport_class]


def memory_plugin(network: MemoryNetwork) -> object:
    """A plugin for ``PluginRegistry.load(plugins=[...])`` that adds ``network``'s transport.

    ::

        network = MemoryNetwork()
        registry = PluginRegistry.load(plugins=[memory_plugin(network)])
        config = NodeConfig(listen={"memory": ListenConfig("memory-host", 0)})
        async with Node(config, registry=registry) as node: ...
    """
    return _MemoryPlugin(network)


def _size(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"[listen.memory] {name} = {value!r} is not allowed: "
                          f"an integer from {low} to {high}")
    return value


def _check_port(host: str, port: object, low: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not low <= port <= 65535:
        raise TransportError(f"memory {host}:{port!r}: port must be an integer from {low} to 65535")
