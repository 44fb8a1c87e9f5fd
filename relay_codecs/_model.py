"""The data model every codec carries, checked the same way by all of them.

The C encoders (msgpack, cbor2) accept more than the model (sets, datetimes,
bytes keys, big ints...) and their decoders can produce more than it (msgpack
timestamps, CBOR simple values, tuple keys...). The walks here hold both ends to
the model, so a value that encodes on one codec behaves the same on the others
and anything a decoder returns can be encoded again.

Rules (docs/codecs.md is the user-facing version):

- scalars: None, bool, int in [-2**63, 2**64 - 1], float, str, bytes
  (bytearray and memoryview encode as bytes);
- containers: list (tuples encode as lists), dict with str keys (int keys too
  where the codec allows them); subclasses encode as their base type;
- registered messages and :class:`UnknownMessage`, carried as the pair
  ``[type_name, {field: value}]``;
- nesting: at most :data:`MAX_DEPTH` levels; each list or dict counts one, a
  message two (its pair and its field map, as on the wire). Encoders enforce it
  exactly; decoders at least within each message.

The walks are the definition; :func:`is_plain` is a shortcut for the common
shape (a dict or list of scalars and flat dicts and lists of scalars). It only
ever answers True for values the walks accept, and never raises, so a codec
that finds it False takes the walk, which says what is wrong. An encoding of
at most :data:`MAX_DEPTH` bytes cannot nest too deeply (every level takes at
least one byte), which lets decoders skip the depth check for small payloads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Final, NoReturn

from relay_core import MessageTypes
from relay_core.errors import DecodeError, EncodeError

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1
MAX_DEPTH: Final = 256
ALLOWED = (
    "None, bool, int, float, str, bytes, bytearray, memoryview, list, tuple, dict,"
    " a registered @message dataclass or UnknownMessage"
)

class MemoryviewFound(Exception):
    """Raised by an :class:`EncodeChecker` built with ``memoryview_ok=False`` so
    that its codec can take a slower path that copies memoryviews to bytes."""


_LEAVES = frozenset({str, bytes, float, bool, type(None)})
# Checked in this order, so bool is not taken for int.
_BASES: tuple[type, ...] = (bool, int, float, str, bytes, bytearray, list, tuple, dict)


def is_plain(value: object, leaves: frozenset[type], marker_like_ok: bool = True) -> bool:
    """True when ``value`` is a list or a dict with str keys, holding only
    leaves and lists or str-keyed dicts of leaves; a leaf is a value whose exact
    type is in ``leaves``, or an int in range.

    Only exact types count, so subclasses, tuples, messages and deeper nesting
    answer False. With ``marker_like_ok=False``, so does any dict that JSON
    would read as a marker (one key, starting with ``$``).
    """
    # Typed containers, so the compiled build walks them with its own dict and
    # list loops (an Any-typed iteration cost half the time); leaves are
    # checked inline (a call per item showed in the pure-Python build), nested
    # containers by one helper. Strings, most of any message, are told by
    # identity once ``leaves`` is known to hold str: a set lookup each showed
    # in instruction counts.
    strings = str in leaves
    if type(value) is dict:
        mapping: dict[Any, object] = value
        if not marker_like_ok and _marker_like(mapping):
            return False
        for key, item in mapping.items():
            if type(key) is not str:
                return False
            kind = type(item)
            if not (kind is str and strings) and kind not in leaves and not _plain_inner(
                    item, leaves, strings, marker_like_ok):
                return False
        return True
    if type(value) is list:
        sequence: list[object] = value
        for item in sequence:
            kind = type(item)
            if not (kind is str and strings) and kind not in leaves and not _plain_inner(
                    item, leaves, strings, marker_like_ok):
                return False
        return True
    return False


def _plain_inner(item: object, leaves: frozenset[type], strings: bool,
                 marker_like_ok: bool) -> bool:
    """Whether a non-leaf item inside a plain value keeps it plain: an int in
    range, or a list or str-keyed dict of leaves (``strings``: str is one)."""
    if type(item) is int:
        return INT_MIN <= item <= INT_MAX
    if type(item) is dict:
        mapping: dict[Any, object] = item
        if not marker_like_ok and _marker_like(mapping):
            return False
        for key, part in mapping.items():
            if type(key) is not str or not _leaf(part, leaves, strings):
                return False
        return True
    if type(item) is list:
        sequence: list[object] = item
        for part in sequence:
            if not _leaf(part, leaves, strings):
                return False
        return True
    return False


def _leaf(part: object, leaves: frozenset[type], strings: bool) -> bool:
    kind = type(part)
    return ((kind is str and strings) or kind in leaves
            or (type(part) is int and INT_MIN <= part <= INT_MAX))


def _marker_like(mapping: dict[Any, object]) -> bool:
    if len(mapping) != 1:
        return False
    key = next(iter(mapping))
    return type(key) is str and key.startswith("$")


def int_range_error(value: int, error: Callable[[str], Exception]) -> Exception:
    bits = abs(value).bit_length()
    # A decoded bignum may have millions of digits: show its size, not its value.
    shown = str(value) if bits <= 128 else f"{'-' if value < 0 else ''}2**{bits - 1} or more"
    return error(f"int {shown} is outside the range -2**63 .. 2**64-1 that every codec carries")


def _is_int_in_range(value: object, error: Callable[[str], Exception]) -> bool:
    """True for an int in range, False for a non-int (the walk queues it); raises otherwise.

    Ints are settled as they are met rather than queued: they are much of the data.
    """
    if type(value) is not int:
        return False
    if INT_MIN <= value <= INT_MAX:
        return True
    raise int_range_error(value, error)


def too_deep(error: Callable[[str], Exception]) -> Exception:
    return error(
        f"value nests deeper than {MAX_DEPTH} levels (each list or dict counts one,"
        " each message two), or contains itself"
    )


def unsupported(obj: object) -> EncodeError:
    return EncodeError(f"cannot encode {type(obj).__qualname__} value: allowed are {ALLOWED}")


def unencodable_text(exc: UnicodeEncodeError) -> EncodeError:
    bad = exc.object[exc.start : exc.end]
    return EncodeError(
        f"a str holds {bad!r}, which UTF-8 cannot encode (a lone surrogate);"
        " str values must be valid Unicode text"
    )


def key_error(key: object, int_keys: bool, error: Callable[[str], Exception]) -> Exception:
    allowed = "str or int" if int_keys else "str (msgpack and cbor take int keys too)"
    return error(f"dict key {key!r} of type {type(key).__qualname__} is not allowed: use {allowed}")


class EncodeChecker:
    """Walks a value before a C encoder sees it, raising ``EncodeError`` for
    anything outside the model. It returns nothing: the encoder does the work.

    The walk keeps its own stack rather than recursing, so a deep value never
    meets Python's recursion limit here, whatever the caller's stack depth.
    """

    def __init__(
        self,
        types: MessageTypes,
        *,
        int_keys: bool,
        memoryview_ok: bool,
        refused: tuple[type, ...] = (),
    ) -> None:
        """``refused`` names types the codec's encoder would write in its own way
        though they subclass a model type (msgpack's ``ExtType`` is a tuple)."""
        self._types = types
        self._int_keys = int_keys
        self._refused = refused
        self._leaves = _LEAVES | {memoryview, bytearray} if memoryview_ok else _LEAVES | {bytearray}

    def check(self, obj: object) -> None:
        leaves = self._leaves
        pending: list[tuple[Any, int]] = [(obj, 1)]
        while pending:
            value, level = pending.pop()
            kind = type(value)
            if kind is int:
                if not INT_MIN <= value <= INT_MAX:
                    raise int_range_error(value, EncodeError)
            elif kind is list or kind is tuple:
                if level > MAX_DEPTH:
                    raise too_deep(EncodeError)
                for item in value:
                    if type(item) not in leaves and not _is_int_in_range(item, EncodeError):
                        pending.append((item, level + 1))
            elif kind is dict:
                self._push_dict(value, level, pending)
            elif kind not in leaves:
                self._push_other(value, level, pending)

    def _push_dict(
        self, mapping: dict[object, object], level: int, pending: list[tuple[Any, int]]
    ) -> None:
        if level > MAX_DEPTH:
            raise too_deep(EncodeError)
        leaves = self._leaves
        for key, value in mapping.items():
            if type(key) is not str:
                self._check_key(key)
            if type(value) not in leaves and not _is_int_in_range(value, EncodeError):
                pending.append((value, level + 1))

    def _check_key(self, key: object) -> None:
        if isinstance(key, str):
            return
        if not self._int_keys or not isinstance(key, int) or isinstance(key, bool):
            raise key_error(key, self._int_keys, EncodeError)
        if not INT_MIN <= key <= INT_MAX:
            raise int_range_error(key, EncodeError)

    def _push_other(self, obj: object, level: int, pending: list[tuple[Any, int]]) -> None:
        pair = self._types.describe(obj)
        if pair is not None:
            _check_field_names(*pair)
            # A message is two levels, as on the wire: its pair and its field map.
            self._push_dict(pair[1], level + 1, pending)  # type: ignore[arg-type]
            return
        if isinstance(obj, memoryview):
            raise MemoryviewFound
        if isinstance(obj, self._refused):
            raise unsupported(obj)
        base = next((base for base in _BASES if isinstance(obj, base)), None)
        if base is None:
            raise unsupported(obj)
        pending.append((base(obj), level))


def _check_field_names(type_name: str, fields: dict[str, object]) -> None:
    for name in fields:
        if type(name) is not str:
            raise EncodeError(
                f"message {type_name!r} has a field named {name!r}; field names must be str"
            )


class Deferred:
    """A message a C decoder met but did not decode: its still-encoded pair.

    Decoding a nested message from inside the C decoder's hook would nest C
    decoder calls, each with a large C stack frame (msgpack's is over 30 KiB), so
    hostile input could overflow the stack. :class:`DecodeChecker` decodes
    deferred messages in its own loop instead.
    """

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return "<message>"


@dataclasses.dataclass(frozen=True, slots=True)
class MessageToBuild:
    """A walk step: build the message once the walk has finished its fields."""

    type_name: str
    fields: dict[object, object]


Slot = Any  # a list index or a dict key
_Task = tuple[Any, int, Any, Slot]  # value (any decoded data), level, container, slot


class DecodeChecker:
    """Walks what a C decoder returned, raising ``DecodeError`` for anything
    outside the model and building :class:`Deferred` messages with ``unpack``.

    Messages already built are leaves: their fields were checked when the codec
    built them. The walk keeps its own stack, so depth never meets Python's
    recursion limit, and it replaces values in the freshly decoded containers.
    """

    def __init__(
        self,
        types: MessageTypes,
        *,
        int_keys: bool,
        unpack: Callable[[bytes], object] | None = None,
    ) -> None:
        self._types = types
        self._int_keys = int_keys
        self._unpack = unpack

    def check(self, obj: object) -> object:
        """Return ``obj``, with any deferred messages built."""
        root = [obj]
        tasks: list[_Task] = [(obj, 1, root, 0)]
        while tasks:
            value, level, parent, slot = tasks.pop()
            kind = type(value)
            if kind is int:
                if not INT_MIN <= value <= INT_MAX:
                    raise int_range_error(value, DecodeError)
            elif kind is list:
                _push_items(value, level, tasks)
            elif kind is dict:
                self._push_dict(value, level, tasks)
            elif kind is Deferred:
                self._expand(value, level, parent, slot, tasks)
            elif kind is MessageToBuild:
                parent[slot] = self._types.build(value.type_name, value.fields)
            elif kind not in _LEAVES and not self._types.is_message(value):
                raise DecodeError(
                    f"decoded a {kind.__qualname__}, which is outside the data model: allowed"
                    " are None, bool, int, float, str, bytes, list, dict and messages"
                )
        return root[0]

    def _push_dict(self, mapping: dict[object, object], level: int, tasks: list[_Task]) -> None:
        if level > MAX_DEPTH:
            raise too_deep(DecodeError)
        int_keys = self._int_keys
        for key, value in mapping.items():
            if type(key) is not str and not (int_keys and type(key) is int):
                raise key_error(key, int_keys, DecodeError)
            if type(value) not in _LEAVES and not _is_int_in_range(value, DecodeError):
                tasks.append((value, level + 1, mapping, key))

    def _expand(
        self, deferred: Deferred, level: int, parent: Any, slot: Slot, tasks: list[_Task]
    ) -> None:
        assert self._unpack is not None, "only a codec that defers makes Deferred values"
        type_name, fields = split_pair(self._unpack(deferred.payload))
        tasks.append((MessageToBuild(type_name, fields), level, parent, slot))
        tasks.append((fields, level + 1, None, None))


def _push_items(items: list[object], level: int, tasks: list[_Task]) -> None:
    if level > MAX_DEPTH:
        raise too_deep(DecodeError)
    for index, item in enumerate(items):
        if type(item) not in _LEAVES and not _is_int_in_range(item, DecodeError):
            tasks.append((item, level + 1, items, index))


def build_message(
    types: MessageTypes, checker: DecodeChecker, pair: object, leaves: frozenset[type]
) -> object:
    """Turn a decoded ``[type_name, {field: value}]`` pair into a message; the
    walk checks the fields unless they are plain with these ``leaves``."""
    type_name, fields = split_pair(pair)
    if not is_plain(fields, leaves):
        checker.check(fields)  # no Deferred here: only msgpack defers, and it builds in its walk
    return types.build(type_name, fields)


def split_pair(pair: object) -> tuple[str, dict[object, object]]:
    """Check the shape of a message's ``[type_name, {field: value}]`` pair."""
    if type(pair) is not list or len(pair) != 2:
        _bad_pair(f"a {type(pair).__qualname__}")
    type_name, fields = pair
    if type(type_name) is not str or type(fields) is not dict:
        _bad_pair(f"[{type(type_name).__qualname__}, {type(fields).__qualname__}]")
    return type_name, fields


def _bad_pair(what: str) -> NoReturn:
    raise DecodeError(f"a message must be the pair [type_name: str, fields: dict], got {what}")
