"""The CBOR codec (RFC 8949): cbor2's C encoder and decoder, held to the data model.

A message is CBOR tag :data:`TAG_MESSAGE` (27, "serialised language-independent
object") over the array ``[type_name, {field: value}]``. cbor2 leaves tag 27 as a
raw ``CBORTag`` whose contents it decodes as tuples and frozendicts, so this
codec decodes the tag itself. Every other semantic tag cbor2 knows (datetimes,
decimals, sets, shared references...) is refused, as are tags it does not know,
except tag 55799 (the "self-described CBOR" prefix), which is transparent, and
bignums (tags 2 and 3), which are accepted when their value fits the int range.

A plain value (see :func:`~relay_codecs._model.is_plain`), or a message whose
fields are plain, skips the walks: is_plain checks exactly what cbor2 would
otherwise let through (foreign types, non-str keys, ints past 64 bits).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

import cbor2

from relay_core import MessageTypes
from relay_core.errors import DecodeError
from relay_core.interfaces import Codec

from ._model import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    DecodeChecker,
    EncodeChecker,
    MemoryviewFound,
    build_message,
    int_range_error,
    is_plain,
    unencodable_text,
    unsupported,
)
from ._types_option import types_option

__all__ = ["TAG_MESSAGE", "CborCodec"]

TAG_MESSAGE = 27
"""The CBOR tag of a message."""

_SELF_DESCRIBED = 55799
# Tags cbor2 6 decodes by itself; each must be overridden to be refused.
_CBOR2_TAGS = (0, 1, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 43000)
# A guard on cbor2's own nesting count, which includes tags: a message is three
# there (tag, array, map) for two model levels. Our walks then check the model.
_CBOR_DEPTH = 2 * MAX_DEPTH + 2
_MEMORYVIEW_AS_BYTES: dict[type, cbor2.EncoderHook] = {
    memoryview: lambda encoder, view: encoder.encode_bytes(bytes(view))
}

SemanticDecoder = Callable[[object, bool], object]
# Ints are not leaves: cbor2 writes any int, so is_plain checks their range.
_PLAIN_LEAVES: frozenset[type] = frozenset({str, float, bool, type(None), bytes})


def _refuse(tag: int) -> SemanticDecoder:
    def refuse(value: object, immutable: bool) -> object:
        raise DecodeError(
            f"CBOR tag {tag} is outside the data model; only tags {TAG_MESSAGE} (message),"
            f" 2 and 3 (bignums within the int range) and {_SELF_DESCRIBED} are allowed"
        )

    return refuse


def _bignum(sign: int) -> SemanticDecoder:
    def bignum(value: object, immutable: bool) -> object:
        if type(value) is not bytes:
            raise DecodeError(f"a CBOR bignum holds a {type(value).__qualname__}, not bytes")
        number = int.from_bytes(value, "big")
        number = number if sign > 0 else -1 - number
        if not INT_MIN <= number <= INT_MAX:
            raise int_range_error(number, DecodeError)
        return number

    return bignum


def _unknown_tag(tag: cbor2.CBORTag, immutable: bool) -> object:
    return _refuse(tag.tag)(tag.value, immutable)


class CborCodec(Codec):
    """CBOR (https://cbor.io), with str and int map keys."""

    name = "cbor"
    options = ()  # ``types`` is for Python callers: a config table cannot name a registry

    def __init__(self, *, types: MessageTypes | None = None) -> None:
        self._types = types_option(types)
        self._encode_checker = EncodeChecker(self._types, int_keys=True, memoryview_ok=False)
        self._slow_checker = EncodeChecker(self._types, int_keys=True, memoryview_ok=True)
        self._decode_checker = DecodeChecker(self._types, int_keys=True)
        self._semantic = self._semantic_decoders()

    def _semantic_decoders(self) -> Mapping[int, SemanticDecoder]:
        decoders = {tag: _refuse(tag) for tag in _CBOR2_TAGS}
        decoders[2] = _bignum(1)
        decoders[3] = _bignum(-1)
        decoders[TAG_MESSAGE] = self._message
        decoders[_SELF_DESCRIBED] = lambda value, immutable: value
        return decoders

    def encode(self, obj: object) -> bytes:
        try:
            if is_plain(obj, _PLAIN_LEAVES):
                return cbor2.dumps(obj)
            pair = self._types.describe(obj)
            if pair is not None and is_plain(pair[1], _PLAIN_LEAVES):
                return cbor2.dumps(cbor2.CBORTag(TAG_MESSAGE, list(pair)))
        except UnicodeEncodeError:
            pass  # the walk below says which value
        return self._encode_walked(obj)

    def _encode_walked(self, obj: object) -> bytes:
        try:
            self._encode_checker.check(obj)
            return cbor2.dumps(obj, default=self._default)
        except MemoryviewFound:
            # cbor2 would write a memoryview as an array of ints; copying it to
            # bytes needs a per-type encoder, which makes every call slower.
            self._slow_checker.check(obj)
            return cbor2.dumps(obj, default=self._default, encoders=_MEMORYVIEW_AS_BYTES)
        except UnicodeEncodeError as exc:
            raise unencodable_text(exc) from exc

    def _default(self, encoder: cbor2.CBOREncoder, obj: object) -> None:
        pair = self._types.describe(obj)
        if pair is None:  # the checker lets nothing else through; kept as a guard
            raise unsupported(obj)
        encoder.encode(cbor2.CBORTag(TAG_MESSAGE, list(pair)))

    def decode(self, data: bytes) -> object:
        stream = io.BytesIO(data)
        obj = self._load(stream)
        extra = len(data) - stream.tell()
        if extra:
            raise DecodeError(f"{extra} bytes follow the CBOR value; a payload holds exactly one")
        if not is_plain(obj, _PLAIN_LEAVES):
            self._decode_checker.check(obj)
        return obj

    def _load(self, stream: io.BytesIO) -> object:
        decoder = cbor2.CBORDecoder(
            stream, semantic_decoders=self._semantic, tag_hook=_unknown_tag, max_depth=_CBOR_DEPTH
        )
        try:
            return decoder.decode()
        except DecodeError:
            raise
        except cbor2.CBORDecodeError as exc:
            # cbor2 wraps what a semantic decoder raises; surface our own message.
            if isinstance(exc.__cause__, DecodeError):
                raise exc.__cause__ from None
            raise DecodeError(f"not a valid CBOR encoding: {exc}") from exc
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise DecodeError(f"not a valid CBOR encoding: {exc}") from exc

    def _message(self, pair: object, immutable: bool) -> object:
        if immutable:
            raise DecodeError("a message cannot be a map key; keys must be str or int")
        return build_message(self._types, self._decode_checker, pair, _PLAIN_LEAVES)
