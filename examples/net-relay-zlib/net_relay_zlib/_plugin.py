"""The hooks net-relay calls: this module is the ``net_relay`` entry point."""

from __future__ import annotations

from collections.abc import Sequence

from relay_core import Compressor, hookimpl

from ._compressor import ZlibCompressor


@hookimpl
def net_relay_compressors() -> Sequence[type[Compressor]]:
    return [ZlibCompressor]
