"""The heph-json wire mode: messages in the format of Heph's net relay, without any I/O.

Heph (the Rust actor library net-relay descends from) sends each message as one
JSON object ``{"uuid": "<UUID>", "message": <value>}``: one object per UDP
datagram, or objects back to back on a TCP stream (whitespace between them
allowed, no length prefix). docs/heph.md is the user-facing description. The
rules this module keeps:

- decoding is as strict as Heph's own reader: exactly the keys ``uuid`` and
  ``message`` (Heph refuses unknown and repeated fields), a uuid of 32 hex
  digits, hyphenated 8-4-4-4-12 or not, and RFC 8259 JSON only (no NaN or
  Infinity literals, no number beyond the range of a 64-bit float, no lone
  surrogate); on any input it raises nothing but :class:`MalformedFrame`;
- decoded messages stay inside net-relay's data model (ints in -2**63 ..
  2**64-1, at most 256 levels of nesting, no repeated key in any object), so a
  node can forward them with any codec. An integer beyond that range (Heph
  writes u128 and i128 as plain numbers) becomes the nearest float, as
  serde_json's own ``Value`` reads it; what :func:`encode_datagram` writes,
  :func:`decode_datagram` returns equal as JSON (a tuple comes back as a list,
  a message as the dict of its fields);
- encoding writes only what serde_json reads back: at most
  :data:`SERDE_JSON_DEPTH` levels of nesting in an envelope, one more in a bare
  message (:func:`encode_bare`, what Heph's tcp relay reads on the connection it
  opened), where receiving takes 256;
- memory is bounded: a datagram over its limit is refused before it is parsed,
  and :class:`UuidWindow` remembers a fixed number of uuids.

The same objects back to back on a stream are cut out by
:mod:`relay_core.protocol.heph_stream`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from collections import deque
from typing import Any, Final

from ..errors import ConfigError, EncodeError, MalformedFrame
from .messages import message_types

__all__ = [
    "SERDE_JSON_DEPTH",
    "HephEnvelope",
    "UuidWindow",
    "decode_datagram",
    "encode_bare",
    "encode_datagram",
    "is_heph_json",
    "is_json_value",
]

# The bounds of net-relay's data model (relay_codecs keeps the same ones).
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_MAX_DEPTH: Final = 256
SERDE_JSON_DEPTH: Final = 126
"""The deepest message :func:`encode_datagram` writes: serde_json, which Heph reads
with, stops at its recursion limit of 128 levels, so it reads 127 nested arrays and
objects, and Heph's envelope object is one of them."""
# Where a uuid came from shares the uuid window's keys: its hash, above the uuid's 128 bits.
_SENDER_BITS: Final = (1 << 64) - 1
_KEYS: Final = frozenset({"uuid", "message"})
_SHAPE: Final = 'one JSON object {"uuid": "<UUID>", "message": <JSON value>}'
_UUID_TEXT: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}"
)
_UUID_RULE: Final = (
    "a UUID string: 32 hex digits, plain or hyphenated 8-4-4-4-12,"
    " like 67e55044-10b1-426f-9247-bb680e5fe0c8"
)
_STARTS_AS_OBJECT: Final = re.compile(rb"[ \t\n\r]*\{")
_STARTS_AS_VALUE: Final = re.compile(rb'[ \t\n\r]*[{\["\-0-9tfn]')
# A \uD800-\uDFFF escape may be a lone surrogate, which is not Unicode text. Only
# texts holding one are checked in full (an escaped backslash before "u" is a
# harmless false alarm: it only costs that check).
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_JSON_TYPE_NAMES: Final = {dict: "an object", list: "an array", str: "a string",
                           bool: "a boolean", int: "a number", float: "a number"}
# Checked in this order, so bool is not taken for int.
_BASES: Final[tuple[type, ...]] = (bool, int, float, str, list, tuple, dict)
_BYTES_TYPES: Final = (bytes, bytearray, memoryview)
_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, check_circular=False
)


@dataclasses.dataclass(frozen=True, slots=True)
class HephEnvelope:
    """One message as Heph sends it: its envelope's two members."""

    uuid: uuid.UUID
    """Names the message, so that its duplicates can be dropped."""
    message: object
    """A JSON value: None, bool, int, float, str, list, or dict with str keys."""


def is_heph_json(datagram: bytes) -> bool:
    """True when ``datagram`` may be heph-json: its first byte after whitespace is ``{``.

    net-relay packets start with ``NR``, so one listener can take both formats.
    """
    return _STARTS_AS_OBJECT.match(datagram) is not None


def is_json_value(data: bytes) -> bool:
    """True when ``data`` may be a bare JSON value: its first byte after whitespace is one
    a value starts with (never the ``N`` of a net-relay packet)."""
    return _STARTS_AS_VALUE.match(data) is not None


# --- decoding ---------------------------------------------------------------------------


def _refuse_constant(name: str) -> object:
    raise MalformedFrame(f"{name} is not JSON: numbers must be finite")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        raise MalformedFrame(
            f"a JSON object repeats the key {_repeated(pairs)!r}; keys must be unique"
        )
    return mapping


def _repeated(pairs: list[tuple[str, object]]) -> str:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            break
        seen.add(key)
    return key


_DECODER: Final = json.JSONDecoder(
    parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
)


def decode_datagram(datagram: bytes, max_size: int) -> HephEnvelope:
    """Return the message a heph-json datagram (or stream object) holds.

    Raise :class:`MalformedFrame`, saying what is wrong, for anything but
    exactly one such object of at most ``max_size`` bytes (whitespace around it
    allowed).
    """
    if len(datagram) > max_size:
        raise MalformedFrame(
            f"heph-json object of {len(datagram)} bytes exceeds the limit of {max_size} bytes"
        )
    envelope = _parse(datagram)
    if type(envelope) is not dict:
        raise MalformedFrame(f"heph-json must be {_SHAPE}, got {_json_type(envelope)}")
    if envelope.keys() != _KEYS:
        raise MalformedFrame(_key_problem(envelope))
    message = _in_model(envelope["message"])
    if _SURROGATE_ESCAPE.search(datagram):
        _check_text(message)
    return HephEnvelope(_read_uuid(envelope["uuid"]), message)


def _parse(datagram: bytes) -> object:
    try:
        text = str(datagram, "utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedFrame(f"heph-json is not valid UTF-8: {exc}") from None
    try:
        return _DECODER.decode(text)
    except MalformedFrame as exc:
        raise MalformedFrame(f"heph-json: {exc}") from None
    except json.JSONDecodeError as exc:
        raise MalformedFrame(f"heph-json is not valid JSON: {exc}") from None
    except ValueError:  # int() refused a number of thousands of digits
        raise MalformedFrame(_BEYOND_FLOAT) from None
    except RecursionError:
        raise MalformedFrame(_too_deep("heph-json message")) from None


def _key_problem(envelope: dict[str, object]) -> str:
    rule = 'a heph-json object has exactly the keys "uuid" and "message"'
    unknown = sorted(envelope.keys() - _KEYS)
    if unknown:
        return f"{rule}; this one also has {', '.join(map(repr, unknown))}"
    missing = " and ".join(f'"{key}"' for key in sorted(_KEYS - envelope.keys(), reverse=True))
    return f"{rule}; this one lacks {missing}"


def _read_uuid(value: object) -> uuid.UUID:
    if type(value) is not str or _UUID_TEXT.fullmatch(value) is None:
        shown = repr(value) if type(value) is str else _json_type(value)
        raise MalformedFrame(f"heph-json uuid must be {_UUID_RULE}; got {shown}")
    return uuid.UUID(value)


def _in_model(message: object) -> object:
    """``message`` inside net-relay's data model, or :class:`MalformedFrame`.

    JSON numbers are unbounded. serde_json reads a number beyond the range of a
    64-bit float (1e400, which Python's parser makes infinity) as an error, and
    an integer beyond 64 bits as the nearest float where the type is its
    ``Value`` or f64 (or exactly into a u128 or i128); this walk does the same,
    turning such integers into floats in place, since the data model's ints end
    at 64 bits. It keeps its own stack, so a deep message never meets the
    recursion limit.
    """
    root: list[object] = [message]
    pending: list[tuple[Any, int]] = [(root, 0)]
    while pending:
        container, level = pending.pop()
        if level > _MAX_DEPTH:
            raise MalformedFrame(_too_deep("heph-json message"))
        for item in container.values() if type(container) is dict else container:
            kind = type(item)
            if kind is dict or kind is list:
                pending.append((item, level + 1))
            elif kind is int and not _INT_MIN <= item <= _INT_MAX:
                _ints_to_floats(container)
            elif kind is float and not math.isfinite(item):
                raise MalformedFrame(_BEYOND_FLOAT)
    return root[0]


def _ints_to_floats(container: Any) -> None:
    """Replace every int of ``container`` beyond the data model by the nearest float."""
    for slot in list(container.keys() if type(container) is dict else range(len(container))):
        value = container[slot]
        if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
            try:
                container[slot] = float(value)
            except OverflowError:
                raise MalformedFrame(_BEYOND_FLOAT) from None


def _check_text(message: object) -> None:
    try:
        _ENCODER.encode(message).encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedFrame(
            "heph-json holds a lone surrogate escape (\\ud800 to \\udfff without its pair);"
            " strings must be Unicode text"
        ) from None


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), "null")


_BEYOND_FLOAT: Final = "heph-json holds a number beyond the range of a 64-bit float"


def _too_deep(what: str) -> str:
    return f"{what} nests deeper than {_MAX_DEPTH} levels (each array or object counts one)"


# --- encoding ---------------------------------------------------------------------------

_Task = tuple[Any, int, Any, Any]  # value, level, container, slot in the container
_IN_ENVELOPE: Final = "inside Heph's envelope"
_BARE: Final = "for a bare message"


def encode_datagram(message: object, message_uuid: uuid.UUID | None = None) -> bytes:
    """Return ``message`` as compact UTF-8 heph-json, under ``message_uuid`` or a new uuid4.

    A registered ``@message`` dataclass (or an ``UnknownMessage``) is written as
    the JSON object of its fields, which is how serde writes a Rust struct: a
    Heph peer knows nothing of net-relay's type names. Raise :class:`EncodeError`
    for what JSON cannot carry: bytes, NaN and infinities, non-str keys, ints
    outside -2**63 .. 2**64-1, text that is not Unicode, more than
    :data:`SERDE_JSON_DEPTH` levels (a Heph node could not read it).
    """
    identity = uuid.uuid4() if message_uuid is None else message_uuid
    if not isinstance(identity, uuid.UUID):
        raise EncodeError(f"message_uuid must be a uuid.UUID, got {type(identity).__qualname__}")
    text = _ENCODER.encode(_to_json(message, SERDE_JSON_DEPTH, _IN_ENVELOPE))
    return _utf8(f'{{"uuid":"{identity}","message":{text}}}')


def encode_bare(message: object) -> bytes:
    """Return ``message`` as compact UTF-8 JSON without an envelope, and a newline.

    Heph's tcp relay reads what comes back on the connection it opened as bare
    messages (serde_json's ``StreamDeserializer`` of its message type), not as
    envelopes. The newline ends a number, which the next value would otherwise
    run into; serde_json skips it as whitespace. Without the envelope, one more
    level of nesting fits serde_json's recursion limit. Refused as by
    :func:`encode_datagram`.
    """
    return _utf8(_ENCODER.encode(_to_json(message, SERDE_JSON_DEPTH + 1, _BARE)) + "\n")


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end]
        raise EncodeError(
            f"a str holds {bad!r}, which UTF-8 cannot encode (a lone surrogate);"
            " str values must be Unicode text"
        ) from None


def _to_json(message: object, max_depth: int, where: str) -> object:
    """A copy of ``message`` made only of what ``json`` writes faithfully.

    The json module would write an int key as a string, NaN as a non-JSON
    literal and an Enum member by its base type; this walk converts or refuses
    each. It keeps its own stack, so a deep or self-containing value fails with
    EncodeError, not RecursionError.
    """
    root: list[object] = [None]
    tasks: list[_Task] = [(message, 1, root, 0)]
    while tasks:
        value, level, parent, slot = tasks.pop()
        kind = type(value)
        if value is None or kind is str or kind is bool:
            parent[slot] = value
        elif kind is int:
            parent[slot] = _checked_int(value)
        elif kind is float:
            parent[slot] = _checked_float(value)
        elif kind is list or kind is tuple:
            parent[slot] = _push(list(value), level, tasks, max_depth, where)
        elif kind is dict:
            parent[slot] = _push(_str_keys(value), level, tasks, max_depth, where)
        else:  # converted to one of the exact types above, at the same level
            tasks.append((_plain(value), level, parent, slot))
    return root[0]


def _push(container: Any, level: int, tasks: list[_Task], max_depth: int, where: str) -> Any:
    """Queue every entry of a new list or dict, to be converted in place."""
    if level > max_depth:
        raise EncodeError(
            f"the message nests deeper than {max_depth} levels (each array or object"
            " counts one), or contains itself: a Heph node reads it with serde_json, whose"
            f" recursion limit of 128 leaves {max_depth} levels {where}")
    slots = container.keys() if type(container) is dict else range(len(container))
    tasks.extend((container[slot], level + 1, container, slot) for slot in slots)
    return container


def _checked_int(value: int) -> int:
    if not _INT_MIN <= value <= _INT_MAX:
        raise EncodeError(f"int {value} is outside -2**63 .. 2**64-1, the range every codec carries")
    return value


def _checked_float(value: float) -> float:
    if not math.isfinite(value):
        raise EncodeError(f"float {value} cannot travel as heph-json: JSON has no NaN or infinity")
    return value


def _str_keys(mapping: dict[Any, object]) -> dict[str, object]:
    return {_str_key(key): value for key, value in mapping.items()}


def _str_key(key: object) -> str:
    if type(key) is str:
        return key
    if isinstance(key, str):
        return str.__str__(key)
    raise EncodeError(
        f"dict key {key!r} of type {type(key).__qualname__} cannot travel as heph-json:"
        " JSON object keys are str"
    )


def _plain(value: object) -> object:
    """The fields of a message, or the base-type copy of a subclass; refuse anything else."""
    if isinstance(value, _BYTES_TYPES):
        raise EncodeError(
            "bytes cannot travel as heph-json, JSON has no bytes: send a str (base64 or hex)"
            " or a list of ints (what serde_json writes for a Vec<u8>)"
        )
    described = message_types.describe(value)
    if described is not None:
        return described[1]
    base = next((base for base in _BASES if isinstance(value, base)), None)
    if base is None:
        raise EncodeError(
            f"cannot encode {type(value).__qualname__} value as heph-json: allowed are None,"
            " bool, int, float, str, list, tuple, dict with str keys and @message dataclasses"
        )
    # str(member) of a str-mixin Enum is its qualified name, not its value.
    return str.__str__(value) if base is str else base(value)


# --- duplicates -------------------------------------------------------------------------


class UuidWindow:
    """The uuids of the last ``max_entries`` distinct messages, each with its sender, to
    drop repeats.

    A uuid seen again from its sender becomes the most recent; when the window is
    full, the least recently seen is forgotten, and a repeat of it would be taken
    as new: the price of bounded memory, visible through :attr:`evictions`.

    Kept in a dict and a deque rather than an ``OrderedDict``, whose per-entry
    links cost about as much again: the deque lists sightings, oldest first;
    the dict maps each key (the sender's hash and the uuid in one int) to the
    one int object the window keeps for it; ``_repeats`` counts, for keys seen
    again, the earlier sightings the deque still holds. Only a uuid's last sighting makes it recent, so an
    earlier one at the front is skipped rather than evicting it, and a deque
    grown by repeats to a quarter more than ``max_entries`` is cut back to last
    sightings. Measured at 65,536 uuids from one source: about 6.3 MiB filled
    once, about 8.8 MiB under a steady stream of new ones (the dict's table
    grows with the churn).
    """

    __slots__ = ("_evictions", "_keys", "_max_entries", "_order", "_repeats")

    def __init__(self, max_entries: int = 65536) -> None:
        if max_entries < 1:
            raise ConfigError(f"max_entries is {max_entries}; it must be at least 1")
        self._max_entries = max_entries
        self._keys: dict[int, int] = {}
        self._order: deque[int] = deque()
        self._repeats: dict[int, int] = {}
        self._evictions = 0

    def first_time(self, message_uuid: uuid.UUID, sender: object = None) -> bool:
        """True if ``message_uuid`` is not remembered from ``sender`` (deliver the message),
        else False.

        ``sender`` is hashable and says where the message came from (the scheme and
        source address, which on a stream names its connection): only the same uuid
        from the same sender is a repeat. Heph nodes whose uuid generator fell back to
        its constant seed send the very same uuids, and must not drop each other's.
        Two senders whose hashes agree would share one scope; str hashes are salted
        per process, so no peer can arrange that.
        """
        # Keyed by one int of the sender's hash and the uuid: one object per entry.
        key = (hash(sender) & _SENDER_BITS) << 128 | message_uuid.int
        kept = self._keys.get(key)
        if kept is not None:
            self._repeats[kept] = self._repeats.get(kept, 0) + 1
            self._order.append(kept)
            if len(self._order) > self._max_entries + self._max_entries // 4:
                self._keep_last_sightings()
            return False
        if len(self._keys) >= self._max_entries:
            self._forget_oldest()
        self._keys[key] = key
        self._order.append(key)
        return True

    def _skip_earlier(self, key: int) -> bool:
        """Whether this sighting of ``key`` is not its last (and count it off if so)."""
        earlier = self._repeats.get(key)
        if earlier is None:
            return False
        if earlier == 1:
            del self._repeats[key]
        else:
            self._repeats[key] = earlier - 1
        return True

    def _forget_oldest(self) -> None:
        order = self._order
        while True:
            key = order.popleft()
            if not self._skip_earlier(key):
                del self._keys[key]
                self._evictions += 1
                return

    def _keep_last_sightings(self) -> None:
        order = self._order
        last: deque[int] = deque()
        while order:
            key = order.popleft()
            if not self._skip_earlier(key):
                last.append(key)
        self._order = last

    def __len__(self) -> int:
        """How many uuids are remembered now (never above ``max_entries``)."""
        return len(self._keys)

    @property
    def evictions(self) -> int:
        """How many uuids were forgotten to make room, since creation."""
        return self._evictions
