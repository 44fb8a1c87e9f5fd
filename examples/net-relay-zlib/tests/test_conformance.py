"""net-relay's plugin kit, run on this compressor: the contract every compressor keeps."""

from __future__ import annotations

from net_relay_zlib import ZlibCompressor

from relay_core import Compressor
from relay_core.testing import CompressorConformance


class TestZlibConforms(CompressorConformance):
    def make_compressor(self) -> Compressor:
        return ZlibCompressor(level=6)


class TestZlibFastestWithoutMinimumSizeConforms(CompressorConformance):
    def make_compressor(self) -> Compressor:
        return ZlibCompressor(level=1, min_size=0)
