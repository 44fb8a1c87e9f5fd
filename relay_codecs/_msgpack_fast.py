"""The msgpack codec's fast paths: encode and decode where msgpack alone keeps to the model.

msgpack itself is handed in (:class:`MsgpackFastPaths` takes its packer and
``unpackb``), so this module imports only the standard library; anything the
fast paths are not sure of goes back to the codec's walks (see
relay_codecs._msgpack for the rules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ._model import MAX_DEPTH, is_plain

__all__ = ["EXT_MESSAGE", "PLAIN_LEAVES", "MsgpackFastPaths"]

EXT_MESSAGE: Final = 1
"""The msgpack extension type code of a message."""

# The packer range-checks ints itself, so the fast path takes them as leaves.
PLAIN_LEAVES: Final[frozenset[type]] = frozenset({str, int, float, bool, type(None), bytes})
# Ext headers: fixext 1/2/4/8/16 carry their size in the first byte, ext 8/16/32
# give it in the next 1, 2 or 4 bytes; the extension type byte follows.
_FIXEXT_SIZES: Final = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
_FIXEXT_FIRST: Final = {size: first for first, size in _FIXEXT_SIZES.items()}
_EXT_SIZE_WIDTHS: Final = {0xC7: 1, 0xC8: 2, 0xC9: 4}

Pair = tuple[str, dict[str, object]]


class ExtensionMet(Exception):
    """The fast decode met an extension: the walk must handle the input."""


def refuse_extensions(code: int, data: bytes) -> object:
    """The fast decode's ``ext_hook``: any extension sends the input to the walk."""
    raise ExtensionMet


_EXT_HOOK: Final[Callable[[int, bytes], object]] = refuse_extensions


class MsgpackFastPaths:
    """Encode and decode where msgpack's C code alone keeps values to the data model.

    ``pack_plain`` packs with no ``default``; ``unpackb`` is msgpack's; the walks
    take whatever the fast paths pass back, and ``check_decoded`` walks a value
    unpacked from input holding bytes that may have left the model.
    """

    def __init__(
        self,
        pack_plain: Callable[[object], bytes],
        unpackb: Callable[..., object],
        decode_errors: tuple[type[BaseException], ...],
        describe: Callable[[object], Pair | None],
        build: Callable[[object], object],
        encode_walked: Callable[[object], bytes],
        decode_walked: Callable[[bytes], object],
        check_decoded: Callable[[object], object],
    ) -> None:
        self._pack_plain = pack_plain
        self._unpackb = unpackb
        self._decode_errors: tuple[type[BaseException], ...] = (ExtensionMet, *decode_errors)
        self._describe = describe
        self._build = build
        self._encode_walked = encode_walked
        self._decode_walked = decode_walked
        self._check_decoded = check_decoded

    def encode(self, obj: object) -> bytes:
        try:
            if is_plain(obj, PLAIN_LEAVES):
                return self._pack_plain(obj)
            pair = self._describe(obj)
            if pair is not None and is_plain(pair[1], PLAIN_LEAVES):
                payload = self._pack_plain(list(pair))
                return ext_header(len(payload)) + payload
        except (OverflowError, UnicodeEncodeError):
            pass  # the walk names the value
        return self._encode_walked(obj)

    def decode(self, data: bytes) -> object:
        # An ext value starts with fixext 1-16 (0xd4-0xd8) or ext 8/16/32 (0xc7-0xc9):
        # compared inline, native when compiled and no call when not.
        first = data[0] if data else 0
        payload = (message_payload(data) if 0xD4 <= first <= 0xD8 or 0xC7 <= first <= 0xC9
                   else None)
        try:
            # msgpack's defaults since 1.0 are raw=False and strict_map_key=True.
            value = self._unpackb(data if payload is None else payload,
                                  ext_hook=_EXT_HOOK)
        except self._decode_errors:
            return self._decode_walked(data)  # also for bad input: the walk explains it
        # No extension got through; a bin header (0xc4-0xc6) may have made a
        # bytes key, a 0xff a timestamp, and only a long input can nest too deep.
        if len(data) > MAX_DEPTH or 0xC4 in data or 0xC5 in data or 0xC6 in data or 0xFF in data:
            value = self._check_decoded(value)  # the pair, for a message: as on the wire
        if payload is None:
            return value
        return self._build(value)


def ext_header(size: int) -> bytes:
    """The header of an ext value of type :data:`EXT_MESSAGE` with ``size`` bytes of data."""
    first = _FIXEXT_FIRST.get(size)
    if first is not None:
        return bytes((first, EXT_MESSAGE))
    for lead, width in _EXT_SIZE_WIDTHS.items():
        if size >> (8 * width) == 0:
            break
    return bytes((lead,)) + size.to_bytes(width, "big") + bytes((EXT_MESSAGE,))


def message_payload(data: bytes) -> bytes | None:
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
