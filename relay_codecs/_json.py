"""The JSON codec (RFC 8259): compact UTF-8, with markers for what JSON lacks.

JSON has no bytes, no NaN or infinities and no tagged values, so those travel
as *markers*: objects with exactly one member whose name starts with ``$``.

- ``{"$bytes": "<base64, RFC 4648, padded>"}`` for bytes;
- ``{"$float": "nan" | "inf" | "-inf"}`` for non-finite floats;
- ``{"$message": [type_name, {field: value}]}`` for a message; the field map is
  taken literally (never read as a marker), its values are not;
- ``{"$dict": {...}}`` escapes a dict that would otherwise read as a marker
  (exactly one key, starting with ``$``); its keys are taken literally.

Every other object is a plain dict, so every dict round-trips. Keys must be str.

Strings are Unicode text, as in every codec: a ``\\uD800``..``\\uDFFF`` escape
without its pair (a lone surrogate) is refused on decode as undecodable, just
as encode refuses such a str. JSON's grammar admits the escape, but RFC 8259
(section 8.2) leaves what it means to each reader and I-JSON (RFC 7493) forbids
it; UTF-8, and so msgpack and CBOR, cannot carry it at all. Accepting it here
would hand a handler a str that no codec, this one included, can send back.
Only a text holding such an escape is checked in full.

A plain value (see :func:`~relay_codecs._model.is_plain`) with no marker-like
dict, or a message whose fields are one, needs no conversion either way and
skips the walks; the json module refuses NaN and infinities itself
(``allow_nan=False``), which sends such values to the walk.
"""

from __future__ import annotations

import binascii
import json
import math
import re
from collections.abc import Iterable
from typing import Any

from relay_core import MessageTypes
from relay_core.errors import DecodeError, EncodeError
from relay_core.interfaces import Codec

from ._model import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    MessageToBuild,
    Slot,
    int_range_error,
    is_plain,
    key_error,
    split_pair,
    too_deep,
    unencodable_text,
    unsupported,
)
from ._types_option import types_option

__all__ = ["JsonCodec"]

_Task = tuple[Any, int, Any, Slot]  # value (any data), level, container, slot
_PLAIN = frozenset({str, bool, type(None)})
_DECODED_PLAIN = _PLAIN | {float}  # json.loads never returns NaN (we refuse the literals)
_FLOAT_NAMES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_BYTES_TYPES = (bytes, bytearray, memoryview)
# Checked in this order, so bool is not taken for int.
_BASES: tuple[type, ...] = (bool, int, float, str, bytes, list, tuple, dict)
# What is_plain may pass through unchanged: no bytes (they need a marker); floats
# are finite or the encoder refuses them, and the decoder only makes finite ones.
_PLAIN_LEAVES: frozenset[type] = frozenset({str, float, bool, type(None)})
# An escape that may be half a surrogate pair (an escaped backslash before "u" is a
# false alarm that costs only the full check).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# In a decoded str a pair has become one character: any surrogate left is lone.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_constant(name: str) -> object:
    raise DecodeError(f"{name} is not JSON; non-finite floats travel as {{\"$float\": ...}}")


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


class JsonCodec(Codec):
    """JSON (https://www.json.org), with str keys only."""

    name = "json"
    options = ()  # ``types`` is for Python callers: a config table cannot name a registry

    def __init__(self, *, types: MessageTypes | None = None) -> None:
        self._types = types_option(types)

    def encode(self, obj: object) -> bytes:
        try:
            return self._encode_plain(obj) or self._encode_walked(obj)
        except UnicodeEncodeError as exc:
            raise unencodable_text(exc) from exc

    def _encode_plain(self, obj: object) -> bytes | None:
        """The encoding of a plain value or message, or None for the walk."""
        try:
            if is_plain(obj, _PLAIN_LEAVES, False):
                return _ENCODER.encode(obj).encode("utf-8")
            pair = self._types.describe(obj)
            if pair is not None and is_plain(pair[1], _PLAIN_LEAVES, False):
                return _ENCODER.encode({"$message": list(pair)}).encode("utf-8")
        except ValueError:  # a non-finite float
            pass
        return None

    def _encode_walked(self, obj: object) -> bytes:
        return _ENCODER.encode(self._to_json(obj)).encode("utf-8")

    # Both walks keep their own stack of (value, level, container, slot) tasks and
    # write each converted value into its slot, so depth never meets Python's
    # recursion limit.

    def _to_json(self, obj: object) -> object:
        root: list[object] = [None]
        tasks: list[_Task] = [(obj, 1, root, 0)]
        while tasks:
            value, level, parent, slot = tasks.pop()
            kind = type(value)
            if kind in _PLAIN:
                parent[slot] = value
            elif kind is int:
                if not INT_MIN <= value <= INT_MAX:
                    raise int_range_error(value, EncodeError)
                parent[slot] = value
            elif kind is float:
                parent[slot] = value if math.isfinite(value) else {"$float": str(value)}
            elif kind is list or kind is tuple:
                items = list(value)
                parent[slot] = _push(items, enumerate(items), level, tasks, EncodeError)
            elif kind is dict:
                fields = _str_keys(value)
                plain = _push(fields, fields.items(), level, tasks, EncodeError)
                parent[slot] = {"$dict": plain} if _looks_like_marker(plain) else plain
            else:
                self._other_to_json(value, level, parent, slot, tasks)
        return root[0]

    def _other_to_json(
        self, obj: object, level: int, parent: Any, slot: Slot, tasks: list[_Task]
    ) -> None:
        if isinstance(obj, _BYTES_TYPES):
            parent[slot] = {"$bytes": binascii.b2a_base64(obj, newline=False).decode("ascii")}
            return
        pair = self._types.describe(obj)
        if pair is not None:
            fields = _str_keys(pair[1])
            _push(fields, fields.items(), level + 1, tasks, EncodeError)
            parent[slot] = {"$message": [pair[0], fields]}
            return
        base = next((base for base in _BASES if isinstance(obj, base)), None)
        if base is None:
            raise unsupported(obj)
        # str(member) of a str-mixin Enum is its qualified name, not its value.
        tasks.append((str.__str__(obj) if base is str else base(obj), level, parent, slot))

    def decode(self, data: bytes) -> object:
        try:
            text = str(data, "utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"JSON payload is not valid UTF-8: {exc}") from exc
        try:
            raw = _DECODER.decode(text)
        except DecodeError:
            raise
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"not valid JSON: {exc}") from exc
        if "\\u" in text and _SURROGATE_ESCAPE.search(text):
            _refuse_lone_surrogates(raw)
        if is_plain(raw, _PLAIN_LEAVES, False):
            return raw
        message = self._plain_message(raw)
        return self._from_json(raw) if message is None else message

    def _plain_message(self, raw: object) -> object | None:
        """The message ``raw`` holds if it is one with plain fields, else None."""
        if type(raw) is not dict or len(raw) != 1 or "$message" not in raw:
            return None
        type_name, fields = split_pair(raw["$message"])
        if not is_plain(fields, _PLAIN_LEAVES, False):
            return None
        return self._types.build(type_name, fields)

    def _from_json(self, obj: object) -> object:
        root = [obj]
        tasks: list[_Task] = [(obj, 1, root, 0)]
        while tasks:
            value, level, parent, slot = tasks.pop()
            kind = type(value)
            if kind is int:
                if not INT_MIN <= value <= INT_MAX:
                    raise int_range_error(value, DecodeError)
            elif kind is list:
                _push(value, enumerate(value), level, tasks, DecodeError)
            elif kind is dict:
                if _looks_like_marker(value):
                    ((key, inner),) = value.items()
                    self._marker(key, inner, level, parent, slot, tasks)
                else:
                    _push(value, value.items(), level, tasks, DecodeError)
            elif kind is MessageToBuild:
                parent[slot] = self._types.build(value.type_name, value.fields)
        return root[0]

    def _marker(
        self, key: str, value: object, level: int, parent: Any, slot: Slot, tasks: list[_Task]
    ) -> None:
        if key == "$dict":
            mapping = _object(key, value)
            parent[slot] = _push(mapping, mapping.items(), level, tasks, DecodeError)
        elif key == "$message":
            type_name, fields = split_pair(value)
            tasks.append((MessageToBuild(type_name, fields), level, parent, slot))
            _push(fields, fields.items(), level + 1, tasks, DecodeError)
        elif key == "$bytes":
            parent[slot] = _read_bytes(value)
        elif key == "$float":
            parent[slot] = _read_float(value)
        else:
            raise DecodeError(
                f"unknown JSON marker {key!r}: known are $bytes, $float, $message and $dict;"
                " an object with one key starting with '$' must be one of them"
            )


def _refuse_lone_surrogates(raw: object) -> None:
    """Raise DecodeError if a string or key anywhere in ``raw`` holds a lone surrogate."""
    pending = [raw]
    while pending:
        value = pending.pop()
        if type(value) is str:
            found = _SURROGATE.search(value)
            if found:
                raise DecodeError(
                    f"JSON text holds a lone surrogate {found.group()!r} (an escape from"
                    " \\ud800 to \\udfff without its pair); strings must be Unicode text"
                )
        elif type(value) is list:
            pending.extend(value)
        elif type(value) is dict:
            pending.extend(value)
            pending.extend(value.values())


def _looks_like_marker(mapping: dict[str, object]) -> bool:
    return len(mapping) == 1 and next(iter(mapping)).startswith("$")


def _push(
    container: Any,
    entries: Iterable[tuple[Slot, Any]],
    level: int,
    tasks: list[_Task],
    error: type[Exception],
) -> Any:
    """Queue the entries of a list or dict that need work; settle the rest in place.

    Ints and floats are settled here rather than queued, because they are most
    of the data and a task each would double the cost of a walk.
    """
    if level > MAX_DEPTH:
        raise too_deep(error)
    plain = _PLAIN if error is EncodeError else _DECODED_PLAIN
    for slot, value in entries:
        kind = type(value)
        if kind in plain:
            continue
        if kind is int:
            if not INT_MIN <= value <= INT_MAX:
                raise int_range_error(value, error)
        elif kind is float:  # only when encoding: JSON has no NaN or infinities
            if not math.isfinite(value):
                container[slot] = {"$float": str(value)}
        else:
            tasks.append((value, level + 1, container, slot))
    return container


def _str_keys(mapping: dict[Any, object]) -> dict[str, object]:
    return {_str_key(key): value for key, value in mapping.items()}


def _object(marker: str, value: object) -> dict[str, object]:
    if type(value) is not dict:
        raise DecodeError(
            f"{{{marker!r}: ...}} must hold an object, got {type(value).__qualname__}"
        )
    return value


def _str_key(key: object) -> str:
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    raise key_error(key, False, EncodeError)


def _read_bytes(value: object) -> bytes:
    if type(value) is not str:
        raise DecodeError(
            f'{{"$bytes": ...}} must hold a base64 str, got {type(value).__qualname__}'
        )
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f'{{"$bytes": ...}} holds invalid base64: {exc}') from exc


def _read_float(value: object) -> float:
    number = _FLOAT_NAMES.get(value) if type(value) is str else None
    if number is None:
        raise DecodeError(f'{{"$float": ...}} must be "nan", "inf" or "-inf", got {value!r}')
    return number
