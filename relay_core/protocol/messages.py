"""The registry that maps message dataclasses to dotted, versionable type names.

Codecs carry a registered message as the pair ``(type_name, {field: value})``;
this module turns instances into that pair and pairs back into instances.

Invariants:

- Only classes registered here are ever constructed from decoded data: a type
  name read off the wire is a dictionary key, never an import path, and there is
  no pickle or eval anywhere in the decoding path.
- One name maps to one class and one class to one name, so ``describe`` and
  ``build`` are inverses.
- Decoding is tolerant, so versions N and N+1 of a program interoperate: extra
  fields are ignored, missing fields take their defaults, and an unknown type
  name becomes an :class:`UnknownMessage` that re-encodes with the same type
  name and fields (a router can forward it unchanged).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import ConfigError, DecodeError, EncodeError

__all__ = ["MessageTypes", "UnknownMessage", "message", "message_types"]

T = TypeVar("T")

_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+")
MAX_TYPE_NAME_LENGTH = 200


@dataclasses.dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A message whose type name this process has not registered.

    It keeps everything the sender wrote, so encoding it again produces the
    same type name and fields.
    """

    type_name: str
    fields: dict[str, object]


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    type_name: str
    cls: type
    names: tuple[str, ...]
    """Every field, in declaration order: what ``describe`` writes."""
    required: frozenset[str]
    """Init fields without a default: ``build`` fails if one is missing."""
    init_names: frozenset[str]
    """Fields the constructor accepts: ``build`` passes only these."""


def _entry(type_name: str, cls: type) -> _Entry:
    fields = dataclasses.fields(cls)
    missing = dataclasses.MISSING
    return _Entry(
        type_name=type_name,
        cls=cls,
        names=tuple(f.name for f in fields),
        required=frozenset(
            f.name
            for f in fields
            if f.init and f.default is missing and f.default_factory is missing
        ),
        init_names=frozenset(f.name for f in fields if f.init),
    )


def _check_type_name(type_name: object) -> None:
    if not isinstance(type_name, str) or not _TYPE_NAME.fullmatch(type_name):
        raise ConfigError(
            f"message type name {type_name!r} is not a dotted name: use ASCII letters, digits,"
            " '_' and '-' in at least two dot-separated parts, for example 'demo.Greeting'"
        )
    if len(type_name) > MAX_TYPE_NAME_LENGTH:
        raise ConfigError(
            f"message type name of {len(type_name)} characters is longer than the"
            f" {MAX_TYPE_NAME_LENGTH} allowed"
        )


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class MessageTypes:
    """A two-way map between registered dataclasses and their type names."""

    def __init__(self) -> None:
        self._by_name: dict[str, _Entry] = {}
        self._by_class: dict[type, _Entry] = {}

    def register(self, type_name: str, cls: type) -> None:
        """Register dataclass ``cls`` under ``type_name``.

        Raises ``EncodeError`` (a ``TypeError``) when ``cls`` is not a dataclass,
        since its instances could never be encoded, and ``ConfigError`` (a
        ``ValueError``) for a malformed name or a name or class already taken.
        """
        _check_type_name(type_name)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise EncodeError(
                f"@message({type_name!r}) needs a dataclass, got {cls!r}:"
                " put @message above @dataclass"
            )
        self._check_free(type_name, cls)
        entry = _entry(type_name, cls)
        self._by_name[type_name] = entry
        self._by_class[cls] = entry

    def _check_free(self, type_name: str, cls: type) -> None:
        taken = self._by_name.get(type_name)
        if taken is not None and taken.cls is not cls:
            raise ConfigError(
                f"message type name {type_name!r} is already registered for"
                f" {_qualified(taken.cls)}; cannot register it for {_qualified(cls)}"
            )
        named = self._by_class.get(cls)
        if named is not None and named.type_name != type_name:
            raise ConfigError(
                f"{_qualified(cls)} is already registered as {named.type_name!r};"
                f" cannot register it again as {type_name!r}"
            )

    def describe(self, obj: object) -> tuple[str, dict[str, object]] | None:
        """Return ``(type_name, fields)`` for a registered instance or an
        :class:`UnknownMessage`, and None for anything else."""
        entry = self._by_class.get(type(obj))
        if entry is not None:
            return entry.type_name, {name: getattr(obj, name) for name in entry.names}
        if type(obj) is UnknownMessage:
            return obj.type_name, obj.fields
        return None

    def build(self, type_name: str, fields: Mapping[object, object]) -> object:
        """Return the registered instance for a decoded pair, tolerating version skew.

        Raises ``DecodeError`` when a field without a default is missing, when a
        field name is not a str, or when the class's own checks reject the values.
        """
        entry = self._by_name.get(type_name)
        if entry is not None and _takes(entry, fields):
            return _call(entry, fields)
        for name in fields:
            if type(name) is not str:
                raise DecodeError(
                    f"message {type_name!r} has a field named {name!r}; field names must be str"
                )
        if entry is None:
            return UnknownMessage(type_name, dict(fields))  # type: ignore[arg-type]
        return _construct(entry, fields)

    def is_message(self, obj: object) -> bool:
        """True for an instance of a registered class or an :class:`UnknownMessage`."""
        kind = type(obj)
        return kind in self._by_class or kind is UnknownMessage


def _takes(entry: _Entry, fields: Mapping[object, object]) -> bool:
    """True when every field is one the class takes (so its name is a str) and
    every required one is there: the common case, tested in C."""
    return fields.keys() <= entry.init_names and entry.required <= fields.keys()


def _construct(entry: _Entry, fields: Mapping[object, object]) -> object:
    missing = entry.required.difference(fields)
    if missing:
        raise DecodeError(
            f"message {entry.type_name!r} lacks required field"
            f" {', '.join(sorted(map(repr, missing)))} (no default in {_qualified(entry.cls)})"
        )
    kwargs = {name: value for name, value in fields.items() if name in entry.init_names}
    return _call(entry, kwargs)


def _call(entry: _Entry, kwargs: Mapping[Any, object]) -> object:
    try:
        return entry.cls(**kwargs)
    except (TypeError, ValueError) as exc:
        # The class may validate its fields in __post_init__: decoded data that
        # it refuses is bad input, not a bug in the receiver.
        raise DecodeError(
            f"{_qualified(entry.cls)} rejected the fields of a {entry.type_name!r} message: {exc}"
        ) from exc


message_types = MessageTypes()
"""The registry that :func:`message` fills and codecs use unless given another."""


def message(type_name: str) -> Callable[[type[T]], type[T]]:
    """Register the decorated dataclass under ``type_name`` in :data:`message_types`.

    Put it above ``@dataclass``::

        @message("demo.Greeting")
        @dataclass
        class Greeting:
            name: str
            lang: str = "en"
    """
    _check_type_name(type_name)

    def register(cls: type[T]) -> type[T]:
        message_types.register(type_name, cls)
        return cls

    return register
