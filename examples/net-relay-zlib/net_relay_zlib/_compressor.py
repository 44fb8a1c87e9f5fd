"""A net-relay compressor backed by the standard library's zlib.

Invariants: :meth:`ZlibCompressor.decompress` never holds more than
``max_output_size + 1`` bytes of output, whatever the input claims, and every
zlib failure leaves as a net-relay error, never as ``zlib.error``.
"""

from __future__ import annotations

import zlib
from typing import ClassVar

from relay_core import (
    Compressor,
    ConfigError,
    DecompressionError,
    DecompressionLimitExceeded,
    PluginOption,
)

__all__ = ["ZlibCompressor"]


class ZlibCompressor(Compressor):
    """zlib (RFC 1950) compression for frame payloads.

    Options, from the ``[compressors.zlib]`` config table:

    - ``level``: 0 (store only) to 9 (smallest), default 6;
    - ``min_size``: payloads shorter than this many bytes travel uncompressed,
      default 64, since zlib's header and checksum outweigh any gain on them.
    """

    name: ClassVar[str] = "zlib"
    options: ClassVar[tuple[PluginOption, ...] | None] = (
        PluginOption("level", "integer", 6, "0 (store only) to 9 (smallest)."),
        PluginOption("min_size", "integer", 64, "Payloads shorter than this (bytes) travel "
                     "uncompressed: zlib's header and checksum outweigh any gain on them."),
    )

    def __init__(self, *, level: int = 6, min_size: int = 64) -> None:
        self.level = _checked_int("level", level, 0, 9)
        self.min_size = _checked_int("min_size", min_size, 0, None)

    def compress(self, data: bytes) -> bytes | None:
        if len(data) < self.min_size:
            return None
        packed = zlib.compress(data, self.level)
        return packed if len(packed) < len(data) else None

    def decompress(self, data: bytes, max_output_size: int) -> bytes:
        stream = zlib.decompressobj()
        try:
            # One byte past the limit is enough to know the limit is exceeded;
            # and max_length 0 would mean "unbounded" to zlib, so it is never passed.
            output = stream.decompress(data, max(max_output_size, 0) + 1)
        except zlib.error as exc:
            raise DecompressionError(f"corrupt zlib data: {exc}") from None
        if len(output) > max_output_size:
            raise DecompressionLimitExceeded(
                f"zlib data expands past the limit of {max_output_size} bytes"
            )
        if not stream.eof:
            raise DecompressionError("truncated zlib data: the stream does not end")
        if stream.unused_data:
            raise DecompressionError(
                f"{len(stream.unused_data)} bytes of unexpected data after the zlib stream"
            )
        return output


def _checked_int(option: str, value: object, low: int, high: int | None) -> int:
    # bool is an int subclass, but `level = true` in a config file is a mistake.
    if type(value) is not int or value < low or (high is not None and value > high):
        allowed = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise ConfigError(f"zlib option {option} = {value!r} is invalid; it must be {allowed}")
    return value
