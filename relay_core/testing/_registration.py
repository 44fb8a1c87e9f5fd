"""Registers one plugin class the way an installed plugin's hook would, to check its name."""

from __future__ import annotations

from collections.abc import Sequence

from ..hookspecs import hookimpl
from ..interfaces import Codec, Compressor, Transport
from ..plugins.registry import PluginRegistry

__all__ = ["registered_names"]

PluginClass = type[Codec] | type[Compressor] | type[Transport]


class _OnePlugin:
    """A plugin whose hooks provide just ``cls``, under the hook that fits its kind."""

    def __init__(self, cls: PluginClass) -> None:
        self.cls = cls

    @hookimpl
    def net_relay_codecs(self) -> Sequence[type[Codec]]:
        return [self.cls] if issubclass(self.cls, Codec) else []

    @hookimpl
    def net_relay_compressors(self) -> Sequence[type[Compressor]]:
        return [self.cls] if issubclass(self.cls, Compressor) else []

    @hookimpl
    def net_relay_transports(self) -> Sequence[type[Transport]]:
        return [self.cls] if issubclass(self.cls, Transport) else []


def registered_names(cls: PluginClass) -> list[str]:
    """The names an empty registry lists after registering ``cls``; its PluginError if refused."""
    registry = PluginRegistry.load(entry_points=False, plugins=[_OnePlugin(cls)])
    if issubclass(cls, Codec):
        return registry.codec_names()
    if issubclass(cls, Compressor):
        return registry.compressor_names()
    return registry.transport_schemes()
