"""Which transports a node wraps in the fault adapter, and with which profiles.

Read from the config: ``[listen.SCHEME.fault]`` injects faults into packets
received on that transport, ``[peers.NAME.fault]`` into packets sent to that
peer. A transport with neither is used as it is, at no cost.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config.node_config import NodeConfig
from ..interfaces import HostPort, Transport, TransportEvents
from .adapter import FaultProfile, FaultyTransport, split_fault_options

__all__ = ["FaultPlan"]


class FaultPlan:
    def __init__(self, config: NodeConfig) -> None:
        self._inbound: dict[str, FaultProfile] = {}
        self._outbound: dict[str, FaultProfile] = {}
        self._schemes: set[str] = set()
        for scheme, listen in config.listen.items():
            profile, _ = split_fault_options(listen.options, f"listen.{scheme}")
            if profile is not None:
                self._inbound[scheme] = profile
                self._schemes.add(scheme)
        for name, peer in config.peers.items():
            profile, _ = split_fault_options(peer.options, f"peers.{name}")
            if profile is not None:
                self._outbound[name] = profile
                self._schemes.add(peer.parsed.scheme)
        self._adapters: dict[str, FaultyTransport] = {}

    def build(self, scheme: str, events: TransportEvents,
              make_inner: Callable[[TransportEvents], Transport]) -> Transport:
        """The transport for ``scheme``: wrapped in the adapter where faults are configured."""
        if scheme not in self._schemes:
            return make_inner(events)
        adapter = FaultyTransport.wrap(events, make_inner, inbound=self._inbound.get(scheme))
        self._adapters[scheme] = adapter
        return adapter

    def destination_prepared(self, transport: Transport, destination: HostPort,
                             peer: str | None) -> None:
        """Apply ``peer``'s outbound faults to packets for ``destination``."""
        profile = self._outbound.get(peer) if peer else None
        if profile is not None and isinstance(transport, FaultyTransport):
            transport.set_destination_profile(destination, profile)

    def stats(self) -> dict[str, dict[str, int]]:
        return {scheme: adapter.stats() for scheme, adapter in self._adapters.items()}
