"""The MessagePack codec: msgpack's C packer and unpacker, held to the data model.

A message is msgpack extension type :data:`EXT_MESSAGE` (1) whose payload is the
msgpack encoding of ``[type_name, {field: value}]``. msgpack itself enforces the
int range both ways; the shared walks in ``_model`` check the rest, and build
messages after unpacking rather than from inside msgpack's hook (see
:class:`~relay_codecs._model.Deferred`).

Fast paths skip the walks where msgpack's own guarantees already hold the value
to the model; anything they are not sure of takes the walk:

- encoding a plain value (see :func:`~relay_codecs._model.is_plain`), or a
  message whose fields are plain, leaves only the int range to the packer;
- decoding with ``strict_map_key`` (keys str or bytes) and an ``ext_hook`` that
  refuses every extension can return nothing outside the model but bytes keys,
  timestamps and deep nesting. Bytes need a bin header (0xc4-0xc6), a timestamp
  an extension type byte -1 (0xff), and each level a byte, so a short input
  without those bytes needs no walk; others walk what was unpacked. A message
  at the root is unwrapped by hand, so it decodes the same way; any other
  extension sends the input to the walk that defers messages.
"""

from __future__ import annotations

import msgpack

from relay_core._errors import DecodeError
from relay_core._interfaces import Codec
from relay_core._messages import MessageTypes, message_types
from relay_core.hookspecs import hookimpl

from ._model import (
    MAX_DEPTH,
    DecodeChecker,
    Deferred,
    EncodeChecker,
    is_plain,
    split_pair,
    unencodable_text,
    unsupported,
)

__all__ = ["EXT_MESSAGE", "MsgpackCodec"]

EXT_MESSAGE = 1
"""The msgpack extension type code of a message."""

_DECODE_ERRORS = (ValueError, TypeError, RecursionError, msgpack.UnpackException)
# The packer range-checks ints itself, so the fast path takes them as leaves.
_PLAIN_LEAVES: frozenset[type] = frozenset({str, int, float, bool, type(None), bytes})
# Ext headers: fixext 1/2/4/8/16 carry their size in the first byte, ext 8/16/32
# give it in the next 1, 2 or 4 bytes; the extension type byte follows.
_FIXEXT_SIZES = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
_FIXEXT_FIRST = {size: first for first, size in _FIXEXT_SIZES.items()}
_EXT_SIZE_WIDTHS = {0xC7: 1, 0xC8: 2, 0xC9: 4}
_EXT_FIRST = frozenset(_FIXEXT_SIZES) | frozenset(_EXT_SIZE_WIDTHS)


class _NotPlain(Exception):
    """The fast decode met an extension: the walk must handle the input."""


class MsgpackCodec(Codec):
    """MessagePack (https://msgpack.org), with str and int dict keys."""

    name = "msgpack"

    def __init__(self, *, types: MessageTypes | None = None) -> None:
        self._types = message_types if types is None else types
        self._encode_checker = EncodeChecker(
            self._types, int_keys=True, memoryview_ok=True, refused=(msgpack.ExtType,)
        )
        self._decode_checker = DecodeChecker(self._types, int_keys=True, unpack=_unpack)
        self._packers: list[msgpack.Packer] = []
        # Shared by all callers, without the pool: packing a plain value runs no
        # Python code, so under the GIL one pack call never interleaves another.
        self._pack_plain = msgpack.Packer(use_bin_type=True, buf_size=4096).pack

    def encode(self, obj: object) -> bytes:
        try:
            if is_plain(obj, _PLAIN_LEAVES):
                return self._pack_plain(obj)  # type: ignore[no-any-return]
            pair = self._types.describe(obj)
            if pair is not None and is_plain(pair[1], _PLAIN_LEAVES):
                payload: bytes = self._pack_plain(list(pair))
                return _ext_header(len(payload)) + payload
        except (OverflowError, UnicodeEncodeError):
            pass  # the walk below names the value
        return self._encode_walked(obj)

    def _encode_walked(self, obj: object) -> bytes:
        self._encode_checker.check(obj)
        try:
            return self._pack(obj)
        except UnicodeEncodeError as exc:
            raise unencodable_text(exc) from exc

    def _pack(self, obj: object) -> bytes:
        # msgpack.packb builds a Packer with a 256 KiB buffer per call, which costs
        # more than packing a small message. Packers are reused from a pool instead:
        # list.pop and list.append are atomic, so concurrent calls (threads) and
        # nested ones (a message inside a message) never share a packer.
        packers = self._packers
        packer = packers.pop() if packers else self._new_packer()
        try:
            return packer.pack(obj)  # type: ignore[no-any-return]
        finally:
            packers.append(packer)

    def _new_packer(self) -> msgpack.Packer:
        return msgpack.Packer(default=self._default, use_bin_type=True, buf_size=4096)

    def _default(self, obj: object) -> msgpack.ExtType:
        pair = self._types.describe(obj)
        if pair is None:  # the checker lets nothing else through; kept as a guard
            raise unsupported(obj)
        return msgpack.ExtType(EXT_MESSAGE, self._pack(list(pair)))

    def decode(self, data: bytes) -> object:
        payload = _message_payload(data) if data and data[0] in _EXT_FIRST else None
        try:
            # msgpack's defaults since 1.0 are raw=False and strict_map_key=True.
            value = msgpack.unpackb(data if payload is None else payload, ext_hook=_not_plain)
        except (_NotPlain, *_DECODE_ERRORS):
            return self._decode_walked(data)  # also for bad input: the walk explains it
        # No extension got through; a bin header (0xc4-0xc6) may have made a
        # bytes key, a 0xff a timestamp, and only a long input can nest too deep.
        if len(data) > MAX_DEPTH or 0xC4 in data or 0xC5 in data or 0xC6 in data or 0xFF in data:
            value = self._decode_checker.check(value)  # the pair, for a message: as on the wire
        if payload is None:
            return value
        return self._types.build(*split_pair(value))

    def _decode_walked(self, data: bytes) -> object:
        return self._decode_checker.check(_unpack(data))


def _ext_header(size: int) -> bytes:
    """The header of an ext value of type :data:`EXT_MESSAGE` with ``size`` bytes of data."""
    first = _FIXEXT_FIRST.get(size)
    if first is not None:
        return bytes((first, EXT_MESSAGE))
    for lead, width in _EXT_SIZE_WIDTHS.items():
        if size >> (8 * width) == 0:
            break
    return bytes((lead,)) + size.to_bytes(width, "big") + bytes((EXT_MESSAGE,))


def _message_payload(data: bytes) -> bytes | None:
    """The data of the message ``data`` holds if it is exactly one ext value of
    type :data:`EXT_MESSAGE`, else None. ``data`` starts with an ext header."""
    if len(data) < 3:  # no ext value is shorter
        return None
    first = data[0]
    if first == 0xC7:  # ext 8, what most messages use: read without the tables
        size, start = data[1], 3
    elif first in _FIXEXT_SIZES:
        size, start = _FIXEXT_SIZES[first], 2
    else:
        width = _EXT_SIZE_WIDTHS[first]
        size, start = int.from_bytes(data[1 : 1 + width], "big"), 2 + width
    if len(data) != start + size or data[start - 1] != EXT_MESSAGE:
        return None
    return data[start:]


def _not_plain(code: int, data: bytes) -> object:
    raise _NotPlain


def _unpack(data: bytes) -> object:
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError(
            f"{len(exc.extra)} bytes follow the msgpack value; a payload holds exactly one"
        ) from exc
    except _DECODE_ERRORS as exc:
        reason = str(exc) or type(exc).__name__
        raise DecodeError(f"not a valid msgpack encoding: {reason}") from exc


def _ext_hook(code: int, data: bytes) -> object:
    if code != EXT_MESSAGE:
        raise DecodeError(
            f"msgpack extension type {code} is outside the data model;"
            f" only {EXT_MESSAGE} (a message) is allowed"
        )
    return Deferred(data)


@hookimpl
def net_relay_codecs() -> list[type[Codec]]:
    return [MsgpackCodec]
