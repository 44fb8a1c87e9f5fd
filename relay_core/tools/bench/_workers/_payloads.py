"""The messages of the growth bench: a few shapes, each as a pool of distinct messages.

Senders cycle through a pool of :data:`POOL` messages made before timing starts,
so making messages costs nothing while a run is timed. Every message of a pool
is different, and the samples a zstd dictionary is trained on come from another
range of seeds (:data:`TRAINING_FIRST`), so a dictionary never holds the very
messages it later compresses. Pure functions: the same seed gives the same message.
"""

from __future__ import annotations

import random

__all__ = ["KINDS", "POOL", "TRAINING_FIRST", "pool"]

POOL = 512
"""Distinct messages a sender cycles through."""
TRAINING_FIRST = 1_000_000
"""First seed of training samples: far from the seeds senders use."""
RECORD_LINES = 48
"""Log lines of a ``records`` message: about 4 KiB as msgpack."""

_EVENTS = ("order.created", "order.paid", "order.shipped", "cart.updated", "user.login")
_REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")
_PATHS = ("/api/v1/orders", "/api/v1/carts", "/api/v1/users", "/healthz")


def _event(seed: int) -> dict[str, object]:
    """A business event of about 160 bytes as msgpack: ids, names, amounts, a timestamp."""
    rng = random.Random(seed)
    return {"id": seed, "request_id": f"{rng.getrandbits(64):016x}",
            "user": f"user-{rng.randrange(10**6)}", "event": rng.choice(_EVENTS),
            "sku": f"SKU-{rng.randrange(10**5):05d}", "qty": rng.randrange(1, 9),
            "price_cents": rng.randrange(100, 100_000), "currency": "EUR",
            "at": 1712345678.25 + seed, "region": rng.choice(_REGIONS), "ok": True,
            "src": "checkout"}


def _records(seed: int) -> dict[str, object]:
    """A batch of access-log lines, about 4 KiB as msgpack and highly repetitive."""
    rng = random.Random(seed)
    lines = [{"ts": 1712345678.0 + seed + line / 100, "level": "INFO", "host": "web-3",
              "msg": f"GET {rng.choice(_PATHS)}/{rng.randrange(10**4)} 200 {rng.randrange(90)}ms",
              "trace": f"{rng.getrandbits(32):08x}"}
             for line in range(RECORD_LINES)]
    return {"batch": seed, "service": "storefront", "lines": lines}


def _message(kind: str, seed: int, size: int) -> object:
    if kind == "event":
        return _event(seed)
    if kind == "records":
        return _records(seed)
    return random.Random(seed).randbytes(size)  # "random": incompressible bytes


KINDS = ("bytes", "event", "records", "random")
"""``bytes``: one block of ``size`` bytes, sent again and again (the size sweep);
``event``: ~160-byte events; ``records``: compressible ~4 KiB batches; ``random``:
incompressible ``size``-byte blocks."""


def pool(kind: str, size: int, count: int = POOL, first: int = 0) -> list[object]:
    """``count`` messages of ``kind`` from seeds ``first``... (``bytes``: one message).

    An unknown kind is a ValueError naming the kinds.
    """
    if kind not in KINDS:
        raise ValueError(f"no payload kind {kind!r}; choose from {', '.join(KINDS)}")
    if kind == "bytes":
        return [random.Random(first).randbytes(size)]  # a 10 MiB block is made once
    return [_message(kind, seed, size) for seed in range(first, first + count)]
