"""net-relay-zlib: a zlib compressor plugin for net-relay.

Installing the distribution is all it takes: net-relay finds the plugin through
its ``net_relay`` entry point. Choose it with ``compressor = "zlib"`` in a
node's config file.
"""

from __future__ import annotations

from ._compressor import ZlibCompressor

__all__ = ["ZlibCompressor"]
