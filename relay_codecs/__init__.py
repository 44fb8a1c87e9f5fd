"""net-relay's built-in codecs (msgpack, cbor, json) and compressors (zstd, none).

Each class is imported on first use, so a missing optional library (say,
zstandard) makes only its own plugin unavailable, never this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Before any module of this package is looked up: importing relay_core puts the
# NET_RELAY_PURE_PYTHON switch in place (relay_core._compiled).
import relay_core  # noqa: F401

if TYPE_CHECKING:
    from ._cbor import CborCodec
    from ._json import JsonCodec
    from ._msgpack import MsgpackCodec
    from ._none import NoCompressor
    from ._zstd import ZstdCompressor, train_dictionary

__all__ = [
    "CborCodec",
    "JsonCodec",
    "MsgpackCodec",
    "NoCompressor",
    "ZstdCompressor",
    "train_dictionary",
]

_HOMES = {
    "CborCodec": "._cbor",
    "JsonCodec": "._json",
    "MsgpackCodec": "._msgpack",
    "NoCompressor": "._none",
    "ZstdCompressor": "._zstd",
    "train_dictionary": "._zstd",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home, __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
