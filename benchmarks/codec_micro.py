"""Each codec's encode and decode against the raw library call doing the same job.

Run ``python benchmarks/codec_micro.py [--seconds S]``. The ratio column is what
the codec's model checks cost on top of the C library: compare rows of one run,
not runs on different machines.

"Raw" is what a user would write without net-relay: ``msgpack.packb`` and
``unpackb``, ``cbor2.dumps`` and ``loads``, and one reused ``json.JSONEncoder``
and ``JSONDecoder`` with the codec's output options. For a registered message,
raw gets the plainest hook that writes the same bytes (msgpack ext type 1, CBOR
tag 27, the JSON ``$message`` marker) and builds the class back with
``cls(**fields)``; it checks nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import timeit
from collections.abc import Callable
from typing import Any

import cbor2
import msgpack
from codec_bench import Greeting, Inventory  # one definition of the sample messages

from relay_codecs import CborCodec, JsonCodec, MsgpackCodec
from relay_core import Codec

Call = Callable[[], object]


def small_dict() -> object:
    return {"n": 0, "text": "hello world, a small message", "values": [1, 2, 3], "ok": True}


def small_message() -> object:
    return Greeting("ada lovelace", "en", 1234567890, ["greeting", "demo"])


def nested_message() -> object:
    """About 4 KiB in msgpack: a message holding a list of small records."""
    items = [
        {
            "sku": f"SKU-{index:06d}",
            "count": index * 7,
            "price": index * 1.25,
            "ok": index % 3 == 0,
            "dims": [index, index + 1, index + 2],
            "meta": {"zone": "a", "shelf": index % 11},
        }
        for index in range(50)
    ]
    return Inventory("eu-west-1/warehouse-07", items)


# --- raw baselines: the library call, with the plainest hook for messages -------------------

_CLASSES = {"bench.Greeting": Greeting, "bench.Inventory": Inventory}


def _pair(obj: Any) -> list[object]:
    type_name = next(name for name, cls in _CLASSES.items() if cls is type(obj))
    return [type_name, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}]


def _build(pair: list[Any]) -> object:
    return _CLASSES[pair[0]](**pair[1])


def _is_message(value: object) -> bool:
    return type(value) in _CLASSES.values()


def raw_msgpack(value: object) -> tuple[Call, Call]:
    if not _is_message(value):
        payload = msgpack.packb(value)
        return lambda: msgpack.packb(value), lambda: msgpack.unpackb(payload)
    # The hook packs with a reused Packer: packb inside packb allocates two
    # 256 KiB buffers at once, which glibc's malloc can make ~10x slower than
    # packing, and a baseline that slow would flatter the codec.
    inner = msgpack.Packer()

    def default(obj: object) -> msgpack.ExtType:
        return msgpack.ExtType(1, inner.pack(_pair(obj)))

    def ext_hook(code: int, data: bytes) -> object:
        return _build(msgpack.unpackb(data))

    payload = msgpack.packb(value, default=default)
    return (
        lambda: msgpack.packb(value, default=default),
        lambda: msgpack.unpackb(payload, ext_hook=ext_hook),
    )


def raw_cbor(value: object) -> tuple[Call, Call]:
    if not _is_message(value):
        payload = cbor2.dumps(value)
        return lambda: cbor2.dumps(value), lambda: cbor2.loads(payload)

    def default(encoder: cbor2.CBOREncoder, obj: object) -> None:
        encoder.encode(cbor2.CBORTag(27, _pair(obj)))

    # A semantic decoder, not a tag_hook: cbor2 hands a tag_hook tuples and frozendicts.
    decoders = {27: lambda pair, immutable: _build(pair)}
    payload = cbor2.dumps(value, default=default)
    return (
        lambda: cbor2.dumps(value, default=default),
        lambda: cbor2.loads(payload, semantic_decoders=decoders),
    )


def raw_json(value: object) -> tuple[Call, Call]:
    # One encoder and decoder for all calls: json.dumps and loads with options
    # build a new one per call, which would flatter the codec.
    def default(obj: object) -> object:
        return {"$message": _pair(obj)}

    def object_hook(obj: dict[str, Any]) -> object:
        return _build(obj["$message"]) if "$message" in obj else obj

    encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=default)
    decoder = json.JSONDecoder(object_hook=object_hook if _is_message(value) else None)
    payload = encoder.encode(value).encode("utf-8")
    return (
        lambda: encoder.encode(value).encode("utf-8"),
        lambda: decoder.decode(payload.decode("utf-8")),
    )


RAW = {"msgpack": raw_msgpack, "cbor": raw_cbor, "json": raw_json}


# --- timing ---------------------------------------------------------------------------------


def microseconds(raw: Call, ours: Call, seconds: float) -> tuple[float, float]:
    """Best CPU time per call of each, timed in alternation: CPU time, so that
    other processes on a busy machine count less, and alternation, so that
    what they still disturb falls on both alike."""
    timers = timeit.Timer(raw, timer=time.process_time), timeit.Timer(ours, timer=time.process_time)
    count, elapsed = timers[1].autorange()
    rounds = max(5, int(seconds / 2 / max(elapsed, 1e-9)))
    best = [min(timer.timeit(count) for _ in range(3)) for timer in timers]
    for _ in range(rounds):
        best = [min(old, timer.timeit(count)) for old, timer in zip(best, timers, strict=True)]
    return best[0] / count * 1e6, best[1] / count * 1e6


def rows(codec: Codec, label: str, value: object, seconds: float) -> list[str]:
    raw_encode, raw_decode = RAW[codec.name](value)
    payload = codec.encode(value)
    assert payload == raw_encode(), f"{codec.name} and raw write different bytes for {label}"
    assert codec.decode(payload) == value == raw_decode(), f"{codec.name} changed {label}"
    lines = []
    for op, raw, ours in (
        ("encode", raw_encode, lambda: codec.encode(value)),
        ("decode", raw_decode, lambda: codec.decode(payload)),
    ):
        raw_us, our_us = microseconds(raw, ours, seconds)
        lines.append(
            f"{label:<10} {codec.name:<8} {op:<7} {len(payload):>6} "
            f"{raw_us:>9.2f} {our_us:>9.2f} {our_us / raw_us:>6.2f}x"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="time per cell (default 0.5)")
    seconds = parser.parse_args().seconds
    print(f"{'message':<10} {'codec':<8} {'op':<7} {'bytes':>6} {'raw us':>9} {'codec us':>9}"
          f" {'ratio':>7}")
    values = (("dict", small_dict()), ("message", small_message()), ("4KiB", nested_message()))
    for codec in (MsgpackCodec(), CborCodec(), JsonCodec()):
        for label, value in values:
            for line in rows(codec, label, value, seconds):
                print(line, flush=True)


if __name__ == "__main__":
    main()
