"""UBJSON (https://ubjson.org, draft 12) as a net-relay codec, in pure Python.

How net-relay's data model maps onto UBJSON:

- None, bool, float (always ``D``, float64, so every float survives) and str (``S``)
  are UBJSON's own; an int takes the smallest of ``i U I l L`` that holds it, and one
  above int64 (up to 2**64 - 1) travels as a high-precision number (``H``);
- bytes travel as an optimized array of uint8 (``[$U#`` count, then the bytes), which
  UBJSON defines for exactly this; lists as arrays, dicts (str keys) as objects;
- a registered message is an array that opens with a no-op (``N``), then the type
  name (``S``) and an object of its fields. Other UBJSON readers skip the no-op and
  see ``[type name, fields]``; this codec writes ``N`` nowhere else.

Invariants: encoding refuses (``EncodeError``) every value outside the model and any
nesting past 256 levels (a message counts two: itself and its fields); decoding
raises only ``DecodeError``, reads nothing past the input, allocates nothing larger
than the input, and nests no deeper than encoding does, one Python frame per level.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import ClassVar

from relay_core import (
    Codec,
    DecodeError,
    EncodeError,
    MessageTypes,
    PluginOption,
    message_types,
)

__all__ = ["UbjsonCodec"]

MAX_DEPTH = 256
INT_MIN, INT_MAX = -(2**63), 2**64 - 1
_INT_FORMATS = ((b"i", ">b", -(2**7), 2**7 - 1), (b"U", ">B", 0, 2**8 - 1),
                (b"I", ">h", -(2**15), 2**15 - 1), (b"l", ">i", -(2**31), 2**31 - 1),
                (b"L", ">q", -(2**63), 2**63 - 1))
_INT_READERS = {marker[0]: struct.Struct(fmt) for marker, fmt, _, _ in _INT_FORMATS}
_FLOAT64, _FLOAT32 = struct.Struct(">d"), struct.Struct(">f")
_LONGEST_H = 21  # digits of 2**64 - 1, and a sign: a longer number is outside the model


class UbjsonCodec(Codec):
    """UBJSON draft 12, with bytes as uint8 arrays and messages as no-op-tagged arrays."""

    name: ClassVar[str] = "ubjson"
    options: ClassVar[tuple[PluginOption, ...] | None] = ()

    def __init__(self, *, types: MessageTypes | None = None) -> None:
        self._types = message_types if types is None else types

    def encode(self, obj: object) -> bytes:
        out = bytearray()
        self._encode(obj, out, 0)
        return bytes(out)

    def decode(self, data: bytes) -> object:
        reader = _Reader(bytes(data), self._types)
        value = reader.value(reader.marker(), 0)
        if reader.at < len(reader.data):
            raise DecodeError(f"ubjson: {len(reader.data) - reader.at} bytes after the value")
        return value

    def _encode(self, obj: object, out: bytearray, depth: int) -> None:
        kind = type(obj)
        if obj is None:
            out += b"Z"
        elif kind is bool:
            out += b"T" if obj else b"F"
        elif isinstance(obj, int) and kind is not bool:
            _encode_int(int(obj), out)
        elif isinstance(obj, float):
            out += b"D" + _FLOAT64.pack(obj)
        elif isinstance(obj, str):
            out += b"S"
            _encode_text(obj, out)
        elif isinstance(obj, bytes | bytearray | memoryview):
            payload = bytes(obj)
            out += b"[$U#"
            _encode_int(len(payload), out)
            out += payload
        else:
            self._encode_container(obj, out, depth + 1)

    def _encode_container(self, obj: object, out: bytearray, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise EncodeError(f"ubjson: nested deeper than {MAX_DEPTH} levels")
        if isinstance(obj, list | tuple):
            out += b"["
            for item in obj:
                self._encode(item, out, depth)
            out += b"]"
        elif isinstance(obj, dict):
            self._encode_object(obj, out, depth)
        else:
            pair = self._types.describe(obj)
            if pair is None:
                raise EncodeError(f"ubjson cannot encode {type(obj).__name__} {obj!r:.80}: it"
                                  " is outside the data model (register a message type?)")
            out += b"[NS"
            _encode_text(pair[0], out)
            if depth + 1 > MAX_DEPTH:
                raise EncodeError(f"ubjson: nested deeper than {MAX_DEPTH} levels")
            self._encode_object(pair[1], out, depth + 1)
            out += b"]"

    def _encode_object(self, fields: Mapping[object, object] | Mapping[str, object],
                       out: bytearray, depth: int) -> None:
        out += b"{"
        for key, value in fields.items():
            if not isinstance(key, str):
                raise EncodeError(f"ubjson: dict key {key!r} is a {type(key).__name__};"
                                  " keys must be str")
            _encode_text(key, out)
            self._encode(value, out, depth)
        out += b"}"


def _encode_int(value: int, out: bytearray) -> None:
    for marker, fmt, low, high in _INT_FORMATS:
        if low <= value <= high:
            out += marker + struct.pack(fmt, value)
            return
    if not INT_MIN <= value <= INT_MAX:
        raise EncodeError(f"ubjson: int {value} is outside -2**63 .. 2**64-1")
    out += b"H"
    _encode_text(str(value), out)


def _encode_text(text: str, out: bytearray) -> None:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodeError(f"ubjson: text is not valid Unicode ({exc.reason})") from None
    _encode_int(len(raw), out)
    out += raw


class _Reader:
    """A cursor over one encoding; every read checks that the bytes are there."""

    def __init__(self, data: bytes, types: MessageTypes) -> None:
        self.data = data
        self.at = 0
        self.types = types
        self.scalars: dict[int, Callable[[], object]] = {
            ord("Z"): lambda: None, ord("T"): lambda: True, ord("F"): lambda: False,
            ord("D"): lambda: _FLOAT64.unpack(self.take(8))[0],
            ord("d"): lambda: _FLOAT32.unpack(self.take(4))[0],
            ord("S"): self.text, ord("H"): self.high_precision,
            ord("C"): self.char,
        }

    def take(self, count: int) -> bytes:
        end = self.at + count
        if count < 0 or end > len(self.data):
            raise DecodeError(f"ubjson: truncated at byte {self.at} (wanted {count} more)")
        chunk = self.data[self.at:end]
        self.at = end
        return chunk

    def marker(self) -> int:
        return self.take(1)[0]

    def value(self, marker: int, depth: int) -> object:
        reader = _INT_READERS.get(marker)
        if reader is not None:
            return reader.unpack(self.take(reader.size))[0]
        scalar = self.scalars.get(marker)
        if scalar is not None:
            return scalar()
        if marker not in b"[{":
            raise DecodeError(f"ubjson: unexpected marker {bytes([marker])!r} at byte"
                              f" {self.at - 1}")
        if depth + 1 > MAX_DEPTH:
            raise DecodeError(f"ubjson: nested deeper than {MAX_DEPTH} levels")
        if marker == ord("{"):
            return self.fields(depth + 1)
        return self.array(depth + 1)

    def array(self, depth: int) -> object:
        first = self.marker()
        if first == ord("$"):
            if self.take(2) != b"U#":
                raise DecodeError("ubjson: of the optimized arrays only [$U# (bytes) is read")
            return self.take(self.length())
        if first == ord("N"):
            return self.message(depth)
        items = []
        while first != ord("]"):
            items.append(self.value(first, depth))
            first = self.marker()
        return items

    def message(self, depth: int) -> object:
        if self.marker() != ord("S"):
            raise DecodeError("ubjson: a message's type name must follow its no-op marker")
        type_name = self.text()
        if self.marker() != ord("{") or depth + 1 > MAX_DEPTH:
            raise DecodeError(f"ubjson: message {type_name!r} lacks its fields object, or is"
                              f" nested deeper than {MAX_DEPTH} levels")
        fields = self.fields(depth + 1)
        if self.marker() != ord("]"):
            raise DecodeError(f"ubjson: message {type_name!r} has more than its fields")
        return self.types.build(type_name, fields)

    def fields(self, depth: int) -> dict[object, object]:
        if self.data[self.at:self.at + 1] in (b"$", b"#"):
            raise DecodeError("ubjson: optimized objects are not read")
        result: dict[object, object] = {}
        while self.data[self.at:self.at + 1] != b"}":
            key = self.text()
            result[key] = self.value(self.marker(), depth)
        self.at += 1
        return result

    def length(self) -> int:
        marker = self.marker()
        reader = _INT_READERS.get(marker)
        if reader is None:
            raise DecodeError(f"ubjson: a length must be an integer, not {bytes([marker])!r}")
        count = int(reader.unpack(self.take(reader.size))[0])
        if count < 0:
            raise DecodeError(f"ubjson: negative length {count}")
        return count

    def text(self) -> str:
        try:
            return self.take(self.length()).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"ubjson: text is not UTF-8 ({exc.reason})") from None

    def char(self) -> str:
        byte = self.marker()
        if byte > 127:
            raise DecodeError(f"ubjson: char {byte} is not ASCII")
        return chr(byte)

    def high_precision(self) -> int:
        digits = self.text()
        if len(digits) > _LONGEST_H or not digits.lstrip("-").isdigit() \
                or not digits.isascii():
            raise DecodeError(f"ubjson: high-precision number {digits[:24]!r} is not an int"
                              " this codec reads")
        value = int(digits)
        if not INT_MIN <= value <= INT_MAX:
            raise DecodeError(f"ubjson: int {value} is outside -2**63 .. 2**64-1")
        return value
