"""The plugin registry: which codec, compressor and transport classes exist.

A :class:`PluginRegistry` owns one pluggy ``PluginManager``; there is no global
registry, so each node (and each test) sees exactly the plugins it loaded.

Invariants the registry keeps:

- every class it holds passed validation when its plugin was registered: a
  concrete subclass of the right interface, with a ``name`` (``scheme`` for
  transports) that fits the 1-byte length field of a frame;
- a name belongs to one plugin only. A plugin registered in code that claims a
  taken name is refused with :class:`PluginConflict`, and nothing of it stays behind;
- an installed plugin (an entry point) costs only itself when something is wrong:
  one that fails to import, implements an unknown hook or returns something invalid
  is logged and kept in :attr:`PluginRegistry.failures`, and its names are unavailable;
  a name two installed plugins claim is unavailable to both (their other names stay),
  and an error saying who claims it is raised only when something asks for it. So
  ``net-relay plugins`` always lists, and a node that uses neither starts;
- every plugin instance, of every kind, is made by :meth:`PluginRegistry.create`:
  its options are checked first, against the class's declared ``options``
  (:class:`~relay_core.PluginOption`) or, if it declares none, its constructor's
  signature, and any ConfigError names the config file (when there is one), the
  table and the key. A node makes every plugin its config names when it is made,
  so a bad option stops it before it starts.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, Literal, TypeVar, overload

import pluggy

from .. import hookspecs
from ..config.paths import resolve_paths
from ..errors import ConfigError, PluginConflict, PluginError, RelayError, UnknownPlugin
from ..hookspecs import PROJECT_NAME
from ..interfaces import Codec, Compressor, PluginOption, Transport, check_declared
from .checks import (
    KINDS,
    SPECS,
    Kind,
    KindSpec,
    Origin,
    call_hook,
    check_signature_options,
    provided_classes,
    qualified_name,
    unknown_hooks,
)

__all__ = ["PluginFailure", "PluginInfo", "PluginRegistry"]

logger = logging.getLogger("relay_core.plugins")

T = TypeVar("T")

_NO_OPTIONS: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One provided class: a row of ``net-relay plugins``."""

    kind: Kind
    name: str
    """The codec or compressor name, or the transport scheme."""
    distribution: str
    """The distribution that provides it, or ``<module>`` for a plugin registered in code."""
    version: str
    """The distribution's version; empty for a plugin registered in code."""
    plugin: str
    """The entry point name, or the name the plugin was registered under."""


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """An installed plugin, or one name of it, that cannot be used, and why."""

    plugin: str
    distribution: str
    version: str
    error: str
    """Exception type and message, e.g. ``ModuleNotFoundError: No module named 'cbor2'``."""
    kind: str = "?"
    """The kind of the unavailable name when known (a conflict); ``?`` for a whole plugin."""
    name: str = ""
    """The unavailable name when known (a conflict); empty for a whole plugin, whose
    names are unknown (it is listed, and found, under its entry point name)."""

    @property
    def listed_as(self) -> str:
        """The name it is listed under: the conflicting name, or the entry point's."""
        return self.name or self.plugin


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    """One registered class and who provided it."""

    kind: Kind
    name: str
    cls: type[T]
    origin: Origin

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} from {self.origin}"


class PluginRegistry:
    """The codecs, compressors and transports one node can use."""

    def __init__(self) -> None:
        """Create an empty registry; :meth:`load` is the usual way to make one."""
        self._manager = pluggy.PluginManager(PROJECT_NAME)
        self._manager.add_hookspecs(hookspecs)
        self._origins: dict[str, Origin] = {}  # pluggy's name for a plugin -> origin
        self._codecs: dict[str, _Entry[Codec]] = {}
        self._compressors: dict[str, _Entry[Compressor]] = {}
        self._transports: dict[str, _Entry[Transport]] = {}
        self._tables: dict[Kind, dict[str, _Entry[Any]]] = {
            "codec": self._codecs,
            "compressor": self._compressors,
            "transport": self._transports,
        }
        self._broken: list[PluginFailure] = []
        self._conflicts: dict[tuple[Kind, str], list[Origin]] = {}
        """Names that two or more installed plugins claim: usable by none of them."""

    @property
    def failures(self) -> list[PluginFailure]:
        """Installed plugins that could not be loaded, then every claimant of a name that
        more than one claims (each unavailable, with the reason)."""
        conflicts = [
            PluginFailure(origin.plugin, origin.distribution, origin.version,
                          f"PluginConflict: {_claimed(kind, name, origins)}", kind, name)
            for (kind, name), origins in sorted(self._conflicts.items())
            for origin in origins
        ]
        return [*self._broken, *conflicts]

    @classmethod
    def load(cls, *, entry_points: bool = True, plugins: Iterable[object] = ()) -> PluginRegistry:
        """Return a new registry with every installed plugin, then ``plugins``."""
        registry = cls()
        if entry_points:
            registry._load_entry_points()
        for plugin in plugins:
            registry.register(plugin)
        return registry

    def register(self, plugin: object, name: str | None = None) -> None:
        """Add a plugin object (usually a module) whose hooks provide classes.

        Raise :class:`PluginConflict` if it claims a name another plugin has, or
        :class:`PluginError` if its hooks return something invalid.
        """
        if plugin is None:
            raise PluginError("cannot register None as a plugin; pass a module or an object")
        label = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        module = plugin.__name__ if inspect.ismodule(plugin) else _module_of(plugin)
        self._add(plugin, name, Origin(label, f"<{module}>", ""))

    def codec(self, name: str, /, **options: object) -> Codec:
        """Return a new instance of the codec called ``name``, given ``options``: any
        keyword its constructor takes, declared for config tables or not (a codec's
        ``types`` registry, which no config file can express)."""
        return self.create("codec", name, options, from_config=False)

    def compressor(self, name: str, /, **options: object) -> Compressor:
        """Return a new instance of the compressor called ``name``, given ``options``
        (any keyword its constructor takes, as for :meth:`codec`)."""
        return self.create("compressor", name, options, from_config=False)

    @overload
    def create(self, kind: Literal["codec"], name: str, options: Mapping[str, object] = ...,
               *, source: str | None = ..., directory: str | None = ...,
               args: Sequence[object] = ..., from_config: bool = ...) -> Codec: ...
    @overload
    def create(self, kind: Literal["compressor"], name: str,
               options: Mapping[str, object] = ..., *, source: str | None = ...,
               directory: str | None = ..., args: Sequence[object] = ...,
               from_config: bool = ...) -> Compressor: ...
    @overload
    def create(self, kind: Literal["transport"], name: str,
               options: Mapping[str, object] = ..., *, source: str | None = ...,
               directory: str | None = ..., args: Sequence[object] = ...,
               from_config: bool = ...) -> Transport: ...

    def create(self, kind: Kind, name: str, options: Mapping[str, object] = _NO_OPTIONS, *,
               source: str | None = None, directory: str | None = None,
               args: Sequence[object] = (), from_config: bool = True) -> object:
        """Make the ``kind`` plugin called ``name`` from the options of its config table.

        The one way a plugin of any kind is made. Relative paths under the class's
        ``path_options`` are joined to ``directory`` (the config file's); option
        names are checked against what the class declares for config tables (or, with
        ``from_config`` false, against the constructor's signature); then the class is
        called with ``args`` (a transport's events) and the options as keywords.
        A ConfigError, from the check or from the constructor, names ``source``
        (the config file, if any) and the table (``[compressors.zstd]``) in front
        of what the plugin said; any other exception from the constructor becomes
        a PluginError saying so.
        """
        entry = self._find(self._tables[kind], kind, name)
        table = f"{SPECS[kind].table}.{name}"
        given = resolve_paths(options, entry.cls.path_options, directory)
        try:
            self.check_options(entry.cls, given, table, from_config=from_config)
            return entry.cls(*args, **given)
        except ConfigError as exc:
            raise ConfigError(_located(str(exc), table, source)) from None
        except RelayError:
            raise
        except Exception as exc:  # a third-party error must not reach the user raw
            raise PluginError(_located(
                f"{entry} could not be created with options {dict(given)!r}:"
                f" {type(exc).__name__}: {exc}", table, source)) from exc

    def plugin_class(self, kind: Kind, name: str) -> type:
        """Return the ``kind`` class called ``name``, for what it declares (``options``)."""
        return self._find(self._tables[kind], kind, name).cls

    def unavailable(self, kind: Kind, name: str) -> str | None:
        """Why the ``kind`` called ``name`` is installed but unusable, or None if it is not.

        A name two installed plugins claim, or the entry point name of a plugin that
        could not be loaded (conventionally the name it provides).
        """
        origins = self._conflicts.get((kind, name))
        if origins:
            return _claimed(kind, name, origins)
        for failure in self._broken:
            if failure.plugin == name:
                source = " ".join(filter(None, (failure.distribution, failure.version)))
                return f"plugin {name!r} from {source} failed to load ({failure.error})"
        return None

    def check_available(self, uses: Iterable[tuple[str, str, str]],
                        source: str | None = None) -> None:
        """Raise for the first (key, kind, name) in ``uses`` whose plugin is installed but
        unusable, with the key (``peers.beta.codec``), the file and the reason."""
        for key, kind_name, name in uses:
            spec = next((spec for spec in KINDS if spec.kind == kind_name), None)
            if spec is None or name in self._tables[spec.kind]:
                continue
            reason = self.unavailable(spec.kind, name)
            if reason is not None:
                error = PluginConflict if (spec.kind, name) in self._conflicts else UnknownPlugin
                text = f"{key}: {spec.kind} {name!r} is unavailable: {reason}"
                raise error(f"{source}: {text}" if source else text)

    def codec_class(self, name: str) -> type[Codec]:
        """Return the codec class called ``name``, for what it declares (``path_options``)."""
        return self._find(self._codecs, "codec", name).cls

    def compressor_class(self, name: str) -> type[Compressor]:
        """Return the compressor class called ``name``, for what it declares (``path_options``)."""
        return self._find(self._compressors, "compressor", name).cls

    def transport_class(self, scheme: str) -> type[Transport]:
        """Return the transport class for a URL scheme; the node instantiates it."""
        return self._find(self._transports, "transport", scheme).cls

    def codec_names(self) -> list[str]:
        return sorted(self._codecs)

    def compressor_names(self) -> list[str]:
        return sorted(self._compressors)

    def transport_schemes(self) -> list[str]:
        return sorted(self._transports)

    def plugins(self) -> list[PluginInfo]:
        """Every provided class, sorted by kind, then name."""
        rows = [
            PluginInfo(e.kind, e.name, e.origin.distribution, e.origin.version, e.origin.plugin)
            for table in self._tables.values()
            for e in table.values()
        ]
        return sorted(rows, key=lambda row: (row.kind, row.name))

    def check_options(self, cls: type, options: Mapping[str, object], where: str, *,
                      from_config: bool = True) -> None:
        """Raise :class:`ConfigError` unless ``options`` fit what ``cls`` declares in its
        ``options`` (names, types, required keys), or, if it declares nothing, unless
        ``cls(**options)`` fits its signature.

        ``where`` names the config table the options came from, e.g. ``listen.udp``.
        For a transport, the ``events`` argument the node passes is not an option.
        """
        described = self._describe(cls)
        declared: tuple[PluginOption, ...] | None = getattr(cls, "options", None)
        if declared is not None and from_config:
            check_declared(declared, options, where, described)
            return
        check_signature_options(cls, options, where, described)

    def _load_entry_points(self) -> None:
        found = importlib.metadata.entry_points(group=PROJECT_NAME)
        origins = [(Origin(ep.name, *_distribution_of(ep)), ep) for ep in found]
        for origin, entry_point in sorted(origins, key=lambda pair: str(pair[0])):
            try:
                plugin = entry_point.load()
                # One pluggy name per (distribution, entry point): two distributions that
                # use one entry point name are both registered, neither silently dropped.
                self._add(plugin, f"{origin.distribution}:{origin.plugin}", origin,
                          installed=True)
            except Exception as exc:  # noqa: BLE001 - a broken plugin costs only itself
                self._record_failure(origin, exc)

    def _record_failure(self, origin: Origin, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        logger.warning("%s failed to load and is skipped: %s", origin, error)
        self._broken.append(PluginFailure(origin.plugin, origin.distribution, origin.version,
                                          error))

    def _add(self, plugin: object, pluggy_name: str | None, origin: Origin, *,
             installed: bool = False) -> None:
        registered = self._register_hooks(plugin, pluggy_name, origin)
        try:
            found = [entry for spec in KINDS for entry in self._collect(plugin, spec, origin)]
            if not installed:
                for entry in found:
                    self._check_free(entry)
        except PluginError:
            self._manager.unregister(plugin)
            raise
        self._origins[registered] = origin
        for entry in found:
            self._claim(entry)

    def _claim(self, entry: _Entry[Any]) -> None:
        """Give ``entry`` its name, or, if another installed plugin has it, to neither."""
        key = (entry.kind, entry.name)
        table = self._tables[entry.kind]
        claimants = self._conflicts.get(key)
        held = table.pop(entry.name, None)
        if claimants is None and held is None:
            table[entry.name] = entry
            return
        claimants = self._conflicts.setdefault(key, [] if held is None else [held.origin])
        claimants.append(entry.origin)
        logger.warning("%s is unavailable: %s", f"{entry.kind} {entry.name!r}",
                       _claimed(entry.kind, entry.name, claimants))

    def _register_hooks(self, plugin: object, pluggy_name: str | None, origin: Origin) -> str:
        try:
            registered = self._manager.register(plugin, pluggy_name)
        except ValueError:  # pluggy: this object or this name is already registered
            raise PluginConflict(self._clash(plugin, pluggy_name, origin)) from None
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"{origin} has an invalid hook: {exc}") from None
        try:
            self._manager.check_pending()  # a misspelt hook name would otherwise go unnoticed
        except pluggy.PluginValidationError:
            unknown = sorted(caller.name for caller in self._manager.get_hookcallers(plugin) or ()
                             if caller.spec is None)
            self._manager.unregister(plugin)
            raise PluginError(unknown_hooks(origin, unknown)) from None
        assert registered is not None  # pluggy returns None only for blocked names
        return registered

    def _clash(self, plugin: object, pluggy_name: str | None, origin: Origin) -> str:
        existing = self._manager.get_name(plugin)
        if existing is not None:
            held = self._origins[existing]
            return f"cannot register {origin}: that object is already registered as {held}"
        name = pluggy_name or self._manager.get_canonical_name(plugin)
        return (
            f"cannot register {origin}: the name {name!r} is taken by {self._origins[name]};"
            " register it under another name"
        )

    def _collect(self, plugin: object, spec: KindSpec, origin: Origin) -> list[_Entry[Any]]:
        """Call this plugin's own implementation of one hook and validate what it returns."""
        entries: dict[str, _Entry[Any]] = {}
        for impl in getattr(self._manager.hook, spec.hook).get_hookimpls():
            if impl.plugin is not plugin:
                continue
            if impl.wrapper or impl.hookwrapper:
                raise PluginError(f"{origin}: {spec.hook} cannot be a hook wrapper")
            # Called per plugin rather than through the hook, so that every class
            # is attributed to its plugin in conflicts and listings.
            for cls in provided_classes(call_hook(impl, spec, origin), spec, origin):
                entry: _Entry[Any] = _Entry(spec.kind, getattr(cls, spec.attribute), cls, origin)
                if entries.setdefault(entry.name, entry).cls is not cls:
                    raise PluginConflict(_conflict(entry, origin))
        return list(entries.values())

    def _check_free(self, entry: _Entry[Any]) -> None:
        held = self._tables[entry.kind].get(entry.name)
        if held is not None:
            raise PluginConflict(_conflict(entry, held.origin))
        claimants = self._conflicts.get((entry.kind, entry.name))
        if claimants:
            raise PluginConflict(_conflict(entry, claimants[0]))

    def _find(self, table: dict[str, _Entry[T]], kind: Kind, name: str) -> _Entry[T]:
        entry = table.get(name)
        if entry is not None:
            return entry
        installed = f"installed {kind}s: {', '.join(sorted(table)) or 'none'}"
        reason = self.unavailable(kind, name)
        if reason is not None:
            error = PluginConflict if (kind, name) in self._conflicts else UnknownPlugin
            raise error(f"{kind} {name!r} is unavailable: {reason}; {installed}")
        raise UnknownPlugin(f"no {kind} named {name!r}; {installed}{self._other_kinds(kind, name)}")

    def _other_kinds(self, kind: Kind, name: str) -> str:
        """A hint when ``name`` is a plugin of another kind: ``ubjson`` is a codec, say."""
        others = [spec for spec in KINDS if spec.kind != kind and name in self._tables[spec.kind]]
        return "".join(f"; {name!r} is a {spec.kind} ([{spec.table}.{name}])" for spec in others)

    def _describe(self, cls: type) -> str:
        for table in self._tables.values():
            for entry in table.values():
                if entry.cls is cls:
                    return str(entry)
        return qualified_name(cls)


def _located(text: str, table: str, source: str | None) -> str:
    """``text`` about a plugin's options, with the table (unless it names it) and the file."""
    located = text if text.startswith(f"[{table}]") else f"[{table}] {text}"
    return f"{source}: {located}" if source else located


def _claimed(kind: str, name: str, origins: Sequence[Origin]) -> str:
    claimants = " and by ".join(str(origin) for origin in origins)
    return (f"{kind} {name!r} is claimed by {claimants}; only one of them can be installed"
            " (uninstall the others)")


def _conflict(entry: _Entry[Any], other: Origin) -> str:
    if other == entry.origin:
        return f"{other} provides two different {entry.kind} classes named {entry.name!r}"
    return (
        f"{entry.kind} {entry.name!r} is claimed twice, by {other} and by {entry.origin};"
        " only one of them can be installed"
    )


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = entry_point.dist
    if dist is None:
        return f"<{entry_point.module}>", ""
    return dist.name, dist.version


def _module_of(plugin: object) -> str:
    module = getattr(plugin, "__module__", None)
    return module if isinstance(module, str) else type(plugin).__module__




