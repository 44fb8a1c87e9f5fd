"""The "none" compressor: payloads travel as they are, within the size limit."""

from __future__ import annotations

from relay_core.errors import DecompressionLimitExceeded
from relay_core.interfaces import Compressor

__all__ = ["NoCompressor"]


class NoCompressor(Compressor):
    """Never compresses; still refuses payloads larger than the caller allows."""

    name = "none"
    options = ()

    def compress(self, data: bytes) -> bytes | None:
        return None

    def decompress(self, data: bytes, max_output_size: int) -> bytes:
        if len(data) > max_output_size:
            raise DecompressionLimitExceeded(
                f"payload of {len(data)} bytes exceeds the limit of {max_output_size} bytes"
            )
        return bytes(data)
