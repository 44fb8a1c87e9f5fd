"""net-relay's plugin kit, run on this codec: the contract every codec keeps."""

from __future__ import annotations

from net_relay_ubjson import UbjsonCodec

from relay_core import Codec
from relay_core.testing import CodecConformance


class TestUbjsonConforms(CodecConformance):
    def make_codec(self) -> Codec:
        return UbjsonCodec()
