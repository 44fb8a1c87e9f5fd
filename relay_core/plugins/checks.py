"""What a plugin provides is checked here, before the registry holds any of it.

A hook's result must be a list of concrete classes of the hook's interface, each
with a ``name`` (``scheme`` for transports) of at most 32 characters, since names
travel in a frame field with a 1-byte length; its declared options must be
:class:`~relay_core.PluginOption` tuples; and options for a class that declares
none must fit its constructor's signature. Every problem is a PluginError (or a
ConfigError for options) naming the plugin and what is allowed.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import pluggy

from .. import hookspecs
from ..errors import ConfigError, PluginError
from ..interfaces import Codec, Compressor, PluginOption, Transport

__all__ = [
    "HOOK_NAMES",
    "KINDS",
    "NAME_PATTERN",
    "NAME_RULE",
    "SPECS",
    "Kind",
    "KindSpec",
    "Origin",
    "call_hook",
    "check_class",
    "check_declarations",
    "check_signature_options",
    "option_parameters",
    "provided_classes",
    "qualified_name",
    "unknown_hooks",
]

Kind = Literal["transport", "codec", "compressor"]

# Names travel in a frame field with a 1-byte length, and appear in URLs and config keys.
NAME_PATTERN = re.compile(r"[a-z0-9._-]{1,32}")
NAME_RULE = "1 to 32 characters from a-z, 0-9, '.', '_' and '-'"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a plugin came from, for listings and error messages."""

    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        source = f"{self.distribution} {self.version}" if self.version else self.distribution
        return f"plugin {self.plugin!r} ({source})"


@dataclass(frozen=True, slots=True)
class KindSpec:
    """How one kind of plugin is provided: its hook, interface, name attribute and table."""

    kind: Kind
    hook: str
    interface: type
    attribute: str
    """The class attribute holding the name: ``name`` or ``scheme``."""
    table: str
    """The config table holding each plugin's options: ``[TABLE.NAME]``."""


HOOK_NAMES = tuple(sorted(name for name in dir(hookspecs) if name.startswith("net_relay_")))


KINDS = (
    KindSpec("codec", "net_relay_codecs", Codec, "name", "codecs"),
    KindSpec("compressor", "net_relay_compressors", Compressor, "name", "compressors"),
    KindSpec("transport", "net_relay_transports", Transport, "scheme", "listen"),
)
SPECS: Mapping[Kind, KindSpec] = MappingProxyType({spec.kind: spec for spec in KINDS})


def unknown_hooks(origin: Origin, unknown: Sequence[str]) -> str:
    names = ", ".join(repr(name) for name in unknown) or "a hook net-relay does not define"
    close = [match for name in unknown for match in difflib.get_close_matches(name, HOOK_NAMES, 1)]
    hint = f"; did you mean {', '.join(repr(name) for name in close)}?" if close else ""
    return (f"{origin} implements an unknown hook {names}{hint} (net-relay's hooks:"
            f" {', '.join(HOOK_NAMES)})")


def call_hook(impl: pluggy.HookImpl, spec: KindSpec, origin: Origin) -> object:
    try:
        return impl.function()
    except Exception as exc:
        raise PluginError(f"{origin}: {spec.hook}() raised {type(exc).__name__}: {exc}") from exc


def provided_classes(result: object, spec: KindSpec, origin: Origin) -> list[type]:
    """Return the classes a hook returned, or raise PluginError saying what is wrong."""
    what = f"{spec.interface.__name__} subclasses"
    if not isinstance(result, list | tuple):
        raise PluginError(f"{origin}: {spec.hook}() returned {result!r}, not a list of {what}")
    for item in result:
        if isinstance(item, spec.interface):
            cls = type(item).__name__
            raise PluginError(f"{origin}: {spec.hook}() returned an instance of {cls}; return"
                              f" the class itself ([{cls}]): the node makes the instances")
        if not (isinstance(item, type) and issubclass(item, spec.interface)):
            raise PluginError(f"{origin}: {spec.hook}() returned {item!r}, not one of the {what}")
        check_class(item, spec, origin)
    return list(result)


def check_class(cls: type, spec: KindSpec, origin: Origin) -> None:
    value = getattr(cls, spec.attribute, None)
    if not (isinstance(value, str) and NAME_PATTERN.fullmatch(value)):
        raise PluginError(
            f"{origin}: {qualified_name(cls)}.{spec.attribute} is {value!r}; a {spec.kind}"
            f" {spec.attribute} must be a str of {NAME_RULE}"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise PluginError(f"{origin}: {qualified_name(cls)} is abstract; it must implement {missing}")
    if spec.kind == "transport" and not isinstance(getattr(cls, "reliable", None), bool):
        raise PluginError(f"{origin}: {qualified_name(cls)}.reliable must be True or False")
    for attribute in ("options", "peer_options") if spec.kind == "transport" else ("options",):
        check_declarations(cls, attribute, origin)
    paths: object = getattr(cls, "path_options", frozenset())
    if not (isinstance(paths, frozenset | set) and all(isinstance(key, str) for key in paths)):
        raise PluginError(f"{origin}: {qualified_name(cls)}.path_options is {paths!r}; it must be a "
                          "frozenset of option names")


def check_declarations(cls: type, attribute: str, origin: Origin) -> None:
    declared: object = getattr(cls, attribute, None)
    if declared is None and attribute == "options":
        return
    if not (isinstance(declared, tuple) and all(isinstance(o, PluginOption) for o in declared)):
        raise PluginError(f"{origin}: {qualified_name(cls)}.{attribute} is {declared!r}; it must be"
                          " a tuple of relay_core.PluginOption")
    names = [option.name for option in declared]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PluginError(f"{origin}: {qualified_name(cls)}.{attribute} declares"
                          f" {', '.join(repeated)} more than once")


def check_signature_options(cls: type, options: Mapping[str, object], where: str,
                              described: str) -> None:
    """Raise ConfigError unless ``cls(**options)`` fits the signature of ``cls``."""
    parameters = option_parameters(cls, described)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters if p.kind is not p.VAR_POSITIONAL]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"[{where}] {', '.join(unknown)}: unknown option{'s' if len(unknown) > 1 else ''}"
            f"; allowed: {', '.join(accepted) or 'none'} ({described})"
        )
    missing = [p.name for p in parameters if _is_required(p) and p.name not in options]
    if missing:
        raise ConfigError(f"[{where}] {', '.join(missing)}: required by {described}, "
                          "and not given")


def option_parameters(cls: type, described: str) -> list[inspect.Parameter]:
    """The parameters of ``cls(...)`` that a config table can fill by keyword."""
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError) as exc:
        raise PluginError(f"cannot read the options of {described}: {exc}") from None
    if issubclass(cls, Transport) and parameters and _is_positional(parameters[0]):
        parameters = parameters[1:]  # the TransportEvents the node passes
    return [p for p in parameters if p.kind is not p.POSITIONAL_ONLY]


def _is_positional(parameter: inspect.Parameter) -> bool:
    return parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)


def _is_required(parameter: inspect.Parameter) -> bool:
    variadic = (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    return parameter.default is parameter.empty and parameter.kind not in variadic


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
