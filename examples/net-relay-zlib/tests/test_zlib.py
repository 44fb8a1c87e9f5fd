"""net-relay-zlib's own tests: the compressor contract, and that net-relay finds it.

They use only net-relay's public API, as any third-party plugin's tests would.
"""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from net_relay_zlib import ZlibCompressor, _plugin

from relay_core import DecompressionError, DecompressionLimitExceeded, PluginRegistry


def test_the_plugin_module_provides_the_compressor_under_its_name() -> None:
    registry = PluginRegistry.load(entry_points=False, plugins=[_plugin])
    assert isinstance(registry.compressor("zlib", level=1), ZlibCompressor)


def test_the_installed_entry_point_is_found() -> None:
    assert "zlib" in PluginRegistry.load().compressor_names()


@given(st.binary(max_size=2048), st.integers(min_value=0, max_value=9))
def test_what_is_compressed_decompresses_to_the_original(data: bytes, level: int) -> None:
    compressor = ZlibCompressor(level=level, min_size=0)
    packed = compressor.compress(data)
    assert packed is None or compressor.decompress(packed, len(data)) == data


def test_a_zlib_bomb_stops_at_the_limit() -> None:
    with pytest.raises(DecompressionLimitExceeded):
        ZlibCompressor().decompress(zlib.compress(bytes(10_000_000)), 1_000)


@given(st.binary(max_size=256))
def test_any_input_decompresses_or_raises_decompression_error(data: bytes) -> None:
    try:
        ZlibCompressor().decompress(data, 4096)
    except DecompressionError:
        pass
