"""Registers one plugin class the way an installed plugin's hook would, to check its name."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from ..hookspecs import hookimpl
from ..interfaces import Codec, Compressor, Transport
from ..plugins.registry import PluginRegistry

__all__ = ["declaration_problems", "registered_names"]

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


def declaration_problems(cls: PluginClass) -> list[str]:
    """How the options ``cls`` declares disagree with its constructor and ``path_options``.

    Each declared option must be a keyword the constructor takes (or it takes
    ``**options``), with the declared default where one is declared; and an option
    declared a path must be in ``path_options``, so relative paths are resolved.
    """
    declared = cls.options
    if declared is None:
        return []
    parameters = inspect.signature(cls).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    problems = []
    for option in declared:
        parameter = parameters.get(option.name)
        if parameter is None or parameter.kind not in (parameter.KEYWORD_ONLY,
                                                       parameter.POSITIONAL_OR_KEYWORD):
            if not takes_any:
                problems.append(f"{option.name}: declared, but not a keyword of the constructor")
            continue
        default = parameter.default
        declared_default = list(option.default) if isinstance(option.default, tuple) else \
            option.default
        actual = list(default) if isinstance(default, tuple) else default
        if option.default is not None and actual != declared_default:
            problems.append(f"{option.name}: declared default {option.default!r}, but the "
                            f"constructor's is {default!r}")
    paths = {o.name for o in declared if o.type in ("path", "paths")} - set(cls.path_options)
    problems += [f"{name}: declared a path, but missing from path_options" for name in sorted(paths)]
    return problems
