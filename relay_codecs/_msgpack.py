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

The fast paths live in relay_codecs._msgpack_fast; this module keeps the
codec's class, its options and the walks.
"""

from __future__ import annotations

import msgpack

from relay_core import MessageTypes
from relay_core.errors import DecodeError
from relay_core.interfaces import Codec

from ._model import (
    DecodeChecker,
    Deferred,
    EncodeChecker,
    split_pair,
    unencodable_text,
    unsupported,
)
from ._msgpack_fast import EXT_MESSAGE, PLAIN_LEAVES, MsgpackFastPaths
from ._types_option import types_option

__all__ = ["EXT_MESSAGE", "MsgpackCodec"]

_DECODE_ERRORS = (ValueError, TypeError, RecursionError, msgpack.UnpackException)
_PLAIN_LEAVES = PLAIN_LEAVES


class MsgpackCodec(Codec):
    """MessagePack (https://msgpack.org), with str and int dict keys."""

    name = "msgpack"
    options = ()  # ``types`` is for Python callers: a config table cannot name a registry

    def __init__(self, *, types: MessageTypes | None = None) -> None:
        self._types = types_option(types)
        self._encode_checker = EncodeChecker(
            self._types, int_keys=True, memoryview_ok=True, refused=(msgpack.ExtType,)
        )
        self._decode_checker = DecodeChecker(self._types, int_keys=True, unpack=_unpack)
        self._packers: list[msgpack.Packer] = []
        # Shared by all callers, without the pool: packing a plain value runs no
        # Python code, so under the GIL one pack call never interleaves another.
        pack_plain = msgpack.Packer(use_bin_type=True, buf_size=4096).pack
        self._fast = MsgpackFastPaths(
            pack_plain, msgpack.unpackb, _DECODE_ERRORS, self._types.describe,
            self._build_message, self._encode_walked, self._decode_walked,
            self._decode_checker.check,
        )
        self.encode = self._fast.encode  # type: ignore[method-assign]
        self.decode = self._fast.decode  # type: ignore[method-assign]

    def encode(self, obj: object) -> bytes:
        return self._fast.encode(obj)

    def decode(self, data: bytes) -> object:
        return self._fast.decode(data)

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

    def _build_message(self, pair: object) -> object:
        return self._types.build(*split_pair(pair))

    def _decode_walked(self, data: bytes) -> object:
        return self._decode_checker.check(_unpack(data))


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
