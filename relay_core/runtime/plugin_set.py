"""The plugin instances one node uses: its transports, codecs and compressors.

Each is made once, on first use or at start (:meth:`PluginSet.make_configured`),
from the registry with the options the config gives it; a transport is wrapped
by the fault adapter where the config asks for one.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config.heph_plan import HephPlan
from ..config.node_config import NodeConfig
from ..config.security import NODE_LISTEN_KEYS, transport_options
from ..faults.plan import FaultPlan
from ..interfaces import Codec, Compressor, Transport, TransportEvents
from ..plugins.registry import PluginRegistry

__all__ = ["PluginSet"]


class PluginSet:
    def __init__(self, config: NodeConfig, registry: PluginRegistry, faults: FaultPlan,
                 heph: HephPlan, events_for: Callable[[str], TransportEvents]) -> None:
        self._config = config
        self.registry = registry
        self._faults = faults
        self._heph = heph
        self._events_for = events_for
        """What a new transport for a scheme reports its packets and failures to."""
        self.transports: dict[str, Transport] = {}
        self._codecs: dict[str, Codec] = {}
        self._compressors: dict[str, Compressor] = {}

    def make_configured(self) -> None:
        """Make every plugin the config names, now: a bad option stops the node before it
        starts, never at its first message."""
        makers: dict[str, Callable[[str], object]] = {
            "codec": self.codec, "compressor": self.decompressor, "transport": self.transport}
        for kind, name in self._config.configured_plugins():
            makers[kind](name)

    def transport(self, scheme: str) -> Transport:
        transport = self.transports.get(scheme)
        if transport is None:
            config = self._config
            listen = config.listen.get(scheme)
            options = transport_options(listen.options, NODE_LISTEN_KEYS) if listen else {}
            options.update(self._heph.transport_options(scheme))
            transport = self._faults.build(
                scheme, self._events_for(scheme),
                lambda events: self.registry.create("transport", scheme, options,
                                                    source=config.source,
                                                    directory=config.directory,
                                                    args=(events,)))
            self.transports[scheme] = transport
        return transport

    def codec(self, name: str) -> Codec:
        codec = self._codecs.get(name)
        if codec is None:
            codec = self._codecs[name] = self.registry.create(
                "codec", name, self._config.codec_options.get(name, {}),
                source=self._config.source, directory=self._config.directory)
        return codec

    def compressor(self, name: str) -> Compressor | None:
        """The compressor to send with: None for "none" (frames then name no compressor)."""
        return None if name in ("", "none") else self.decompressor(name)

    def decompressor(self, name: str) -> Compressor:
        compressor = self._compressors.get(name)
        if compressor is None:
            compressor = self._compressors[name] = self.registry.create(
                "compressor", name, self._config.compressor_options.get(name, {}),
                source=self._config.source, directory=self._config.directory)
        return compressor
