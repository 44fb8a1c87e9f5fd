"""Frames per second through encode -> compress -> frame -> parse -> decompress -> decode.

Run ``python benchmarks/codec_bench.py [--seconds S]``. Each pipeline is a list
of stages, one function per stage, covering what a message costs on both
sides of the wire except the socket: the codec, the compressor, and the wire
format (a one-frame packet built and parsed, checksum included). Figures
depend on the machine: compare rows of one run, not runs on different machines.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from relay_codecs import CborCodec, JsonCodec, MsgpackCodec, NoCompressor, ZstdCompressor
from relay_core import Codec, Compressor, message
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet
from relay_core.protocol.wire_read import decode_packet

LIMIT = 1 << 20
Stage = Callable[[Any], Any]


@message("bench.Greeting")
@dataclass(frozen=True)
class Greeting:
    name: str
    lang: str = "en"
    request_id: int = 0
    tags: list[str] = field(default_factory=list)


@message("bench.Inventory")
@dataclass(frozen=True)
class Inventory:
    warehouse: str
    items: list[dict[str, object]]


def small_message() -> object:
    return Greeting("ada lovelace", "en", 1234567890, ["greeting", "demo", "bench"])


def large_message() -> object:
    items = [
        {"sku": f"SKU-{index:06d}", "count": index * 7, "price": index * 1.25, "ok": index % 3 == 0}
        for index in range(80)
    ]
    return Inventory("eu-west-1/warehouse-07", items)


def encode_stage(codec: Codec) -> Stage:
    return codec.encode


def compress_stage(compressor: Compressor) -> Stage:
    def compress(payload: bytes) -> tuple[bytes, bool]:
        compressed = compressor.compress(payload)
        return (compressed, True) if compressed is not None else (payload, False)

    return compress


def decompress_stage(compressor: Compressor) -> Stage:
    def decompress(frame: Frame) -> bytes:
        payload = frame.payload
        return compressor.decompress(payload, LIMIT) if frame.compressor else payload

    return decompress


def packet_stage(codec: Codec, compressor: Compressor) -> Stage:
    def to_packet(carried: tuple[bytes, bool]) -> bytes:
        payload, compressed = carried
        frame = Frame(FrameKind.MESSAGE, codec.name, payload,
                      compressor.name if compressed else "", "bench-actor")
        return encode_packet(1, 1, [encode_frame(frame)])

    return to_packet


def unpacket_stage(packet: bytes) -> Frame:
    return decode_packet(packet).frames[0]


def decode_stage(codec: Codec) -> Stage:
    return codec.decode


def pipeline(codec: Codec, compressor: Compressor) -> list[Stage]:
    return [
        encode_stage(codec),
        compress_stage(compressor),
        packet_stage(codec, compressor),
        unpacket_stage,
        decompress_stage(compressor),
        decode_stage(codec),
    ]


def run_once(stages: list[Stage], message_value: object) -> object:
    value = message_value
    for stage in stages:
        value = stage(value)
    return value


def frames_per_second(stages: list[Stage], message_value: object, seconds: float) -> float:
    timer = timeit.Timer(lambda: run_once(stages, message_value))
    count, elapsed = timer.autorange()
    rounds = max(1, int(seconds / elapsed))
    best = min(timer.repeat(repeat=rounds, number=count))
    return count / best


def wire_size(codec: Codec, compressor: Compressor, message_value: object) -> int:
    """Bytes of the one-frame packet that carries the message."""
    stages = pipeline(codec, compressor)[:3]
    packet: bytes = run_once(stages, message_value)  # type: ignore[assignment]
    return len(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per row (default 1)")
    seconds = parser.parse_args().seconds
    codecs: list[Codec] = [MsgpackCodec(), CborCodec(), JsonCodec()]
    compressors: list[Compressor] = [NoCompressor(), ZstdCompressor()]
    print(f"{'message':<8} {'codec':<8} {'compressor':<10} {'packet B':>8} {'frames/s':>10}")
    for label, value in (("small", small_message()), ("4 KiB", large_message())):
        for codec in codecs:
            for compressor in compressors:
                check = run_once(pipeline(codec, compressor), value)
                assert check == value, f"{codec.name}/{compressor.name} changed the message"
                rate = frames_per_second(pipeline(codec, compressor), value, seconds)
                size = wire_size(codec, compressor, value)
                print(f"{label:<8} {codec.name:<8} {compressor.name:<10} {size:>8} {rate:>10,.0f}")


if __name__ == "__main__":
    main()
