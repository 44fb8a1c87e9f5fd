"""The heph-json wire mode: messages in the format of Heph's net relay, without any I/O.

Heph (the Rust actor library net-relay descends from) sends each message as one
JSON object ``{"uuid": "<UUID>", "message": <value>}``: one object per UDP
datagram, or objects back to back on a TCP stream (whitespace between them
allowed, no length prefix). docs/heph.md is the user-facing description. The
rules this module keeps:

- decoding is as strict as Heph's own reader: exactly the keys ``uuid`` and
  ``message`` (Heph refuses unknown and repeated fields), a uuid of 32 hex
  digits, hyphenated 8-4-4-4-12 or not, and RFC 8259 JSON only (no NaN or
  Infinity literals, no number beyond a 64-bit float or integer, no lone
  surrogate); on any input it raises nothing but :class:`MalformedFrame`;
- decoded messages stay inside net-relay's data model (ints in -2**63 ..
  2**64-1, at most 256 levels of nesting, no repeated key in any object), so a
  node can forward them with any codec; what :func:`encode_datagram` writes,
  :func:`decode_datagram` returns equal as JSON (a tuple comes back as a list,
  a message as the dict of its fields);
- memory is bounded: a datagram or stream object over its limit is refused
  before it is parsed, and :class:`UuidWindow` remembers a fixed number of uuids;
- the stream splitter finds where objects end scanning each byte at most twice,
  whatever the chunking: it never re-reads its buffer from the start.
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
    "HephMessage",
    "HephObjectSplitter",
    "HephStreamSplitter",
    "UuidWindow",
    "decode_datagram",
    "encode_datagram",
    "is_heph_json",
]

# The bounds of net-relay's data model (relay_codecs keeps the same ones).
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_MAX_DEPTH: Final = 256
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
class HephMessage:
    """One message as Heph sends it."""

    uuid: uuid.UUID
    """Names the message, so that its duplicates can be dropped."""
    message: object
    """A JSON value: None, bool, int, float, str, list, or dict with str keys."""


def is_heph_json(datagram: bytes) -> bool:
    """True when ``datagram`` may be heph-json: its first byte after whitespace is ``{``.

    net-relay packets start with ``NR``, so one listener can take both formats.
    """
    return _STARTS_AS_OBJECT.match(datagram) is not None


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


def decode_datagram(datagram: bytes, max_size: int) -> HephMessage:
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
    message = envelope["message"]
    _check_model(message)
    if _SURROGATE_ESCAPE.search(datagram):
        _check_text(message)
    return HephMessage(_read_uuid(envelope["uuid"]), message)


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
        raise MalformedFrame(_int_range_rule("an integer of thousands of digits")) from None
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


def _check_model(message: object) -> None:
    """Raise :class:`MalformedFrame` unless ``message`` fits net-relay's data model.

    JSON numbers are unbounded and Python's parser turns 1e400 into infinity;
    Heph's reader refuses both, and so does this walk (it keeps its own stack,
    so a deep message never meets the recursion limit).
    """
    pending: list[tuple[Any, int]] = [([message], 0)]
    while pending:
        container, level = pending.pop()
        if level > _MAX_DEPTH:
            raise MalformedFrame(_too_deep("heph-json message"))
        for item in container.values() if type(container) is dict else container:
            kind = type(item)
            if kind is dict or kind is list:
                pending.append((item, level + 1))
            elif kind is int and not _INT_MIN <= item <= _INT_MAX:
                raise MalformedFrame(_int_range_rule(f"the integer {item}"))
            elif kind is float and not math.isfinite(item):
                raise MalformedFrame("heph-json holds a number beyond the range of a 64-bit float")


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


def _int_range_rule(what: str) -> str:
    return f"heph-json holds {what}; integers must lie in -2**63 .. 2**64-1"


def _too_deep(what: str) -> str:
    return f"{what} nests deeper than {_MAX_DEPTH} levels (each array or object counts one)"


# --- encoding ---------------------------------------------------------------------------

_Task = tuple[Any, int, Any, Any]  # value, level, container, slot in the container


def encode_datagram(message: object, message_uuid: uuid.UUID | None = None) -> bytes:
    """Return ``message`` as compact UTF-8 heph-json, under ``message_uuid`` or a new uuid4.

    A registered ``@message`` dataclass (or an ``UnknownMessage``) is written as
    the JSON object of its fields, which is how serde writes a Rust struct: a
    Heph peer knows nothing of net-relay's type names. Raise :class:`EncodeError`
    for what JSON cannot carry: bytes, NaN and infinities, non-str keys, ints
    outside -2**63 .. 2**64-1, text that is not Unicode, more than 256 levels.
    """
    identity = uuid.uuid4() if message_uuid is None else message_uuid
    if not isinstance(identity, uuid.UUID):
        raise EncodeError(f"message_uuid must be a uuid.UUID, got {type(identity).__qualname__}")
    text = _ENCODER.encode(_to_json(message))
    try:
        return f'{{"uuid":"{identity}","message":{text}}}'.encode()
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end]
        raise EncodeError(
            f"a str holds {bad!r}, which UTF-8 cannot encode (a lone surrogate);"
            " str values must be Unicode text"
        ) from None


def _to_json(message: object) -> object:
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
            parent[slot] = _push(list(value), level, tasks)
        elif kind is dict:
            parent[slot] = _push(_str_keys(value), level, tasks)
        else:  # converted to one of the exact types above, at the same level
            tasks.append((_plain(value), level, parent, slot))
    return root[0]


def _push(container: Any, level: int, tasks: list[_Task]) -> Any:
    """Queue every entry of a new list or dict, to be converted in place."""
    if level > _MAX_DEPTH:
        raise EncodeError(_too_deep("the message") + ", or contains itself")
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


# --- streams ----------------------------------------------------------------------------

_OPEN: Final = ord("{")
_NOT_WHITESPACE: Final = re.compile(rb"[^ \t\n\r]")
# Inside an object only braces and strings matter for finding its end. One match
# skips everything up to the next brace outside a string (group 1), or up to
# where a string goes on in bytes not received yet; possessive, so no backtracking.
_OBJECT_REST: Final = re.compile(rb'(?:[^{}"]++|"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+")*+([{}])?')
# The rest of a string cut by the end of a chunk; group 1 is its closing quote.
_STRING_REST: Final = re.compile(rb'[^"\\]*+(?:\\[\s\S][^"\\]*+)*+(")?')


def _match(pattern: re.Pattern[bytes], buffer: bytearray, position: int) -> re.Match[bytes]:
    found = pattern.match(buffer, position)
    assert found is not None  # both patterns match the empty string
    return found


class HephObjectSplitter:
    """Splits a heph-json byte stream (Heph over TCP) into the bytes of its objects.

    Between objects only whitespace may appear. Inside an object the splitter
    follows strings and escapes and counts braces, only to find where the object
    ends; it does not check the object (:func:`decode_datagram` does), so what it
    returns starts with ``{`` and ends with the matching ``}``. No byte is scanned
    more than twice (once more when a string runs past the end of a chunk), and
    after each call no more than one unfinished object of at most
    ``max_object_size`` bytes is held; a longer object is refused.

    After any :class:`MalformedFrame` the stream cannot be resynchronised, and
    every later call raises it again: close the connection.
    """

    __slots__ = ("_buffer", "_depth", "_failure", "_in_string", "_max_object_size",
                 "_offset", "_position", "_start")

    def __init__(self, max_object_size: int) -> None:
        if max_object_size < 2:
            raise ConfigError(f"max_object_size is {max_object_size}; an object takes at least 2")
        self._max_object_size = max_object_size
        self._buffer = bytearray()
        self._position = 0  # the next byte of _buffer to look at
        self._start = 0  # where the object being read starts in _buffer
        self._depth = 0  # braces open in that object; 0 between objects
        self._in_string = False
        self._offset = 0  # the stream offset of _buffer[0], for error messages
        self._failure: str | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add ``chunk``; return the bytes of every object now complete, in order.

        Raise :class:`MalformedFrame` for anything but whitespace between
        objects, or an object over the limit. Objects that were whole before the
        fault in the same chunk are returned first, and the fault is raised by
        the next call to :meth:`feed` or :meth:`end` (:attr:`failed` is True
        meanwhile).
        """
        return [data for _, data in self._split(chunk)]

    def end(self) -> None:
        """The stream has ended: raise :class:`MalformedFrame` if it ended inside an object
        or after a fault not raised yet."""
        self._raise_failure()
        if self._depth:
            raise MalformedFrame(
                f"heph-json stream ended inside the object at byte {self._offset + self._start}"
            )

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of an object."""
        return len(self._buffer)

    @property
    def failed(self) -> bool:
        """True once the stream was found malformed: every later call raises."""
        return self._failure is not None

    def discard(self) -> None:
        """Let go of the unfinished object: its connection is gone, and nothing more is fed."""
        self._buffer = bytearray()
        self._position = self._start = self._depth = 0
        self._in_string = False

    def _split(self, chunk: bytes) -> list[tuple[int, bytes]]:
        """:meth:`feed`, with the stream offset where each object starts."""
        self._raise_failure()
        self._buffer += chunk
        objects: list[tuple[int, bytes]] = []
        try:
            self._scan(objects)
        except MalformedFrame as error:
            self._fail(str(error))
            if not objects:
                raise
            return objects
        self._compact()
        return objects

    def _fail(self, reason: str) -> None:
        """Refuse the rest of the stream, for ``reason``, and let go of its bytes."""
        self._failure = reason
        self._buffer.clear()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise MalformedFrame(self._failure)

    def _scan(self, objects: list[tuple[int, bytes]]) -> None:
        buffer = self._buffer
        while self._position < len(buffer):
            if self._depth:
                if not self._read_token(buffer, objects):
                    break
            elif not self._start_object(buffer):
                break
        if self._depth and len(buffer) - self._start > self._max_object_size:
            raise MalformedFrame(self._over_limit("is already", len(buffer) - self._start))

    def _start_object(self, buffer: bytearray) -> bool:
        """Skip whitespace to the next object; False when the buffer ends first."""
        found = _NOT_WHITESPACE.search(buffer, self._position)
        if found is None:
            self._position = len(buffer)
            return False
        start = found.start()
        if buffer[start] != _OPEN:
            raise MalformedFrame(
                f"heph-json stream has {bytes(buffer[start:start + 1])!r} at byte"
                f" {self._offset + start}; between objects only whitespace may appear"
            )
        self._start, self._position, self._depth = start, start + 1, 1
        return True

    def _read_token(self, buffer: bytearray, objects: list[tuple[int, bytes]]) -> bool:
        """Read up to the next brace of the current object; False when the buffer ends first."""
        if self._in_string:
            found = _match(_STRING_REST, buffer, self._position)
            self._position = found.end()
            self._in_string = found.group(1) is None
            return not self._in_string
        found = _match(_OBJECT_REST, buffer, self._position)
        self._position = found.end()
        brace = found.group(1)
        if brace is None:  # at the end of the buffer, or at a string that goes on past it
            self._in_string = self._position < len(buffer)
            self._position += self._in_string
            return self._in_string
        self._depth += 1 if brace == b"{" else -1
        if not self._depth:
            size = self._position - self._start
            if size > self._max_object_size:
                raise MalformedFrame(self._over_limit("is", size))
            objects.append((self._offset + self._start, bytes(buffer[self._start:self._position])))
        return True

    def _over_limit(self, verb: str, size: int) -> str:
        return (f"heph-json stream object at byte {self._offset + self._start} {verb}"
                f" {size} bytes, over the limit of {self._max_object_size}")

    def _compact(self) -> None:
        """Forget the bytes before the current object, or all bytes read between objects."""
        drop = self._start if self._depth else self._position
        del self._buffer[:drop]
        self._offset += drop
        self._position -= drop
        self._start = 0


class HephStreamSplitter:
    """Splits a heph-json byte stream (Heph over TCP) into messages, whatever the chunking.

    A :class:`HephObjectSplitter` finds the objects and :func:`decode_datagram`
    checks each, so the same bounds hold. After any :class:`MalformedFrame`,
    structural or in one object, every later call raises it again: close the
    connection.
    """

    __slots__ = ("_max_object_size", "_objects")

    def __init__(self, max_object_size: int) -> None:
        self._objects = HephObjectSplitter(max_object_size)
        self._max_object_size = max_object_size

    def feed(self, chunk: bytes) -> list[HephMessage]:
        """Add ``chunk``; return every message now complete, in order.

        Raise :class:`MalformedFrame` for bytes that are not heph-json or an
        object over the limit. Messages that were whole before the fault in the
        same chunk are returned first, and the fault is raised by the next call
        to :meth:`feed` or :meth:`end`.
        """
        messages: list[HephMessage] = []
        for offset, data in self._objects._split(chunk):
            try:
                messages.append(decode_datagram(data, self._max_object_size))
            except MalformedFrame as error:
                reason = f"heph-json stream object at byte {offset}: {error}"
                self._objects._fail(reason)
                if not messages:
                    raise MalformedFrame(reason) from None
                break
        return messages

    def end(self) -> None:
        """The stream has ended: raise :class:`MalformedFrame` if it ended inside an object
        or after a fault not raised yet."""
        self._objects.end()

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of an object."""
        return self._objects.buffered


# --- duplicates -------------------------------------------------------------------------


class UuidWindow:
    """The uuids of the last ``max_entries`` distinct messages, to drop repeats.

    A uuid seen again becomes the most recent; when the window is full, the
    least recently seen is forgotten, and a repeat of it would be taken as new:
    the price of bounded memory, visible through :attr:`evictions`.

    Kept in a dict and a deque rather than an ``OrderedDict``, whose per-entry
    links cost about as much again: the deque lists sightings, oldest first;
    the dict maps each uuid's int to the one int object the window keeps for
    it; ``_repeats`` counts, for uuids seen again, the earlier sightings the
    deque still holds. Only a uuid's last sighting makes it recent, so an
    earlier one at the front is skipped rather than evicting it, and a deque
    grown by repeats to a quarter more than ``max_entries`` is cut back to last
    sightings. Measured at 65,536 uuids: about 6 MiB filled once, about 8.5 MiB
    under a steady stream of new ones (the dict's table grows with the churn).
    """

    __slots__ = ("_evictions", "_keys", "_max_entries", "_order", "_repeats")

    def __init__(self, max_entries: int = 65536) -> None:
        if max_entries < 1:
            raise ConfigError(f"max_entries is {max_entries}; it must be at least 1")
        self._max_entries = max_entries
        # Keyed by the uuid's int, which the UUID object already holds: no new object.
        self._keys: dict[int, int] = {}
        self._order: deque[int] = deque()
        self._repeats: dict[int, int] = {}
        self._evictions = 0

    def first_time(self, message_uuid: uuid.UUID) -> bool:
        """True if ``message_uuid`` is not remembered (deliver the message), else False."""
        key = message_uuid.int
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
