"""The hook net-relay calls through the ``net_relay`` entry point."""

from __future__ import annotations

from collections.abc import Sequence

from relay_core import Codec, hookimpl

from ._codec import UbjsonCodec


@hookimpl
def net_relay_codecs() -> Sequence[type[Codec]]:
    return [UbjsonCodec]
