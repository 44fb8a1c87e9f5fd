"""An endpoint for tests without an event loop: a json codec, zlib, a clock the test moves."""

from __future__ import annotations

import json
import logging
import zlib
from typing import ClassVar

from relay_core.errors import CodecError, DecompressionLimitExceeded
from relay_core.interfaces import Codec, Compressor
from relay_core.observe.ratelog import RateLimitedLog
from relay_core.protocol.decoding import PayloadDecoder
from relay_core.protocol.endpoint import Endpoint
from relay_core.protocol.heph_route import HephRoute
from relay_core.protocol.seal import KeyRing, Sealer

ME = 0x1111
PEER = 0x2222
KEY = bytes(range(32))


class JsonCodec(Codec):
    name: ClassVar[str] = "json"

    def encode(self, obj: object) -> bytes:
        return json.dumps(obj).encode()

    def decode(self, data: bytes) -> object:
        try:
            return json.loads(data)
        except ValueError as exc:
            raise CodecError(f"not json: {exc}") from None


class Zlib(Compressor):
    name: ClassVar[str] = "zlib"

    def compress(self, data: bytes) -> bytes | None:
        return zlib.compress(data)

    def decompress(self, data: bytes, max_size: int) -> bytes:
        inflater = zlib.decompressobj()
        out = inflater.decompress(data, max_size + 1)
        if len(out) > max_size:
            raise DecompressionLimitExceeded(f"more than {max_size} bytes")
        return out


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_endpoint(clock: Clock | None = None, *, sealed: bool = False,
                  rate: int = 1 << 30, heph_target: str | None = None,
                  heph_route: HephRoute | None = None,
                  max_message_size: int = 65536) -> Endpoint:
    clock = clock or Clock()
    log = RateLimitedLog(logging.getLogger("relay_core.test"))
    sealer = Sealer(KeyRing({1: KEY}, 1)) if sealed else None
    decoder = PayloadDecoder(lambda name: JsonCodec(), lambda name: Zlib(), max_message_size,
                             rate, clock, log)
    return Endpoint(ME, decoder, duplicate_window=64, max_senders=16,
                    max_message_size=max_message_size, opener=sealer,
                    reply_sealer=lambda key_id: Sealer(KeyRing({1: KEY}, key_id)),
                    sealed_schemes=frozenset({"udp"}) if sealed else frozenset(),
                    heph_routes=_heph_routes(heph_target, heph_route),
                    clock=clock, log=log)


def _heph_routes(target: str | None, route: HephRoute | None) -> dict[str, HephRoute]:
    if route is None and target is not None:
        route = HephRoute((target,))
    return {"udp": route} if route is not None else {}
