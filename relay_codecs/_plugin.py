"""The built-in codecs and compressors as plugins: what their ``net_relay`` entry points load.

Each entry point names one attribute of this module (``relay_codecs._plugin:zstd``),
made when it is first asked for, which is when the module holding that plugin's
class is imported: a missing library (zstandard, say) makes only its own plugin
unavailable, listed with the error by ``net-relay plugins``, and the rest load.

The hook functions live here rather than beside the classes because pluggy marks
each hook function with an attribute, which a function of a compiled module
refuses (relay_core._compiled), and the codecs' modules may be compiled.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from relay_core import Codec, Compressor, hookimpl

__all__ = ["BuiltinPlugin"]


class BuiltinPlugin:
    """One built-in plugin: the codec and compressor classes one module provides."""

    def __init__(self, *, codecs: Sequence[type[Codec]] = (),
                 compressors: Sequence[type[Compressor]] = ()) -> None:
        self._codecs = list(codecs)
        self._compressors = list(compressors)

    @hookimpl
    def net_relay_codecs(self) -> list[type[Codec]]:
        return list(self._codecs)

    @hookimpl
    def net_relay_compressors(self) -> list[type[Compressor]]:
        return list(self._compressors)


_PROVIDERS: dict[str, tuple[str, str, str]] = {
    # entry point: (module, class, "codecs" or "compressors")
    "msgpack": ("._msgpack", "MsgpackCodec", "codecs"),
    "cbor": ("._cbor", "CborCodec", "codecs"),
    "json": ("._json", "JsonCodec", "codecs"),
    "zstd": ("._zstd", "ZstdCompressor", "compressors"),
    "none": ("._none", "NoCompressor", "compressors"),
}


def __getattr__(name: str) -> BuiltinPlugin:
    provider = _PROVIDERS.get(name)
    if provider is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, cls, kind = provider
    provided = getattr(importlib.import_module(module, __package__), cls)
    return BuiltinPlugin(**{kind: [provided]})
