"""The values the codec suite feeds a codec: the data model, what lies outside it, damage.

The data model is the one docs/codecs.md describes; its limits are restated
here (``MODEL_INT_MIN`` .. ``MODEL_INT_MAX``, ``MODEL_MAX_DEPTH``) because a
plugin must meet them exactly: a message one codec takes, every codec takes.

Importing this module registers the suite's message types (``net_relay_kit.*``)
in :data:`relay_core.message_types`.
"""

from __future__ import annotations

import datetime
import decimal
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st

from ..protocol.messages import UnknownMessage, message, message_types

__all__ = [
    "MODEL_INT_MAX",
    "MODEL_INT_MIN",
    "MODEL_MAX_DEPTH",
    "MUTATIONS",
    "NESTINGS",
    "OUTSIDE_THE_MODEL",
    "VERSIONED",
    "WRAPPERS",
    "KitSample",
    "KitVersioned",
    "canonical",
    "model_values",
    "mutated",
    "nested",
    "self_containing_dict",
    "self_containing_list",
]

MODEL_INT_MIN = -(2**63)
MODEL_INT_MAX = 2**64 - 1
MODEL_MAX_DEPTH = 256
"""Levels of nesting every codec carries: each list or dict counts one, a message two."""


@message("net_relay_kit.Sample")
@dataclass
class KitSample:
    """A registered message with a field of each common kind."""

    text: str
    number: int = 0
    blob: bytes = b""
    items: list[object] = field(default_factory=list)


@message("net_relay_kit.Versioned")
@dataclass
class KitVersioned:
    """Version N of a message; the suite writes versions N-1 and N+1 as UnknownMessage."""

    required: int
    added_later: str = "default"
    tags: list[str] = field(default_factory=list)


@dataclass
class _Unregistered:
    value: int


VERSIONED = "net_relay_kit.Versioned"
NEST = "net_relay_kit.Nest"  # never registered: nested ones decode as UnknownMessage
_KEYS = st.text(max_size=6) | st.sampled_from(["$bytes", "$float", "$message", "$dict", "$"])
_INTS = st.integers(MODEL_INT_MIN, MODEL_INT_MAX)
_SCALARS = (st.none() | st.booleans() | _INTS | st.floats() | st.text() | st.binary()
            | st.builds(bytearray, st.binary(max_size=8)))


def _containers(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    fields = st.dictionaries(_KEYS, children, max_size=4)
    return (st.lists(children, max_size=4)
            | st.lists(children, max_size=3).map(tuple)
            | fields
            | st.builds(KitSample, text=st.text(), number=_INTS, blob=st.binary(),
                        items=st.lists(children, max_size=3))
            | st.builds(UnknownMessage, st.sampled_from(["net_relay_kit.Other", "app.v2.Event"]),
                        fields))


def model_values() -> st.SearchStrategy[object]:
    """Hypothesis strategy for values inside the data model, nested a few levels."""
    return st.recursive(_SCALARS, _containers, max_leaves=12)


_SCALAR_BASES: tuple[type, ...] = (bool, int, float, str, bytes)  # bool before its base int


def canonical(value: object) -> object:
    """What a value and its round trip share: tuples are lists, bytearrays bytes, NaN is NaN,
    and every scalar keeps its type (so ``1`` is not ``True`` and not ``1.0``)."""
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    if isinstance(value, bytearray | memoryview):
        return ("bytes", bytes(value))
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    pair = message_types.describe(value)
    if pair is not None:
        return ("message", pair[0], canonical(pair[1]))
    for base in _SCALAR_BASES:
        if isinstance(value, base):
            return (base.__name__, base(value))
    return ("other", value)


def nested(levels: int, wrap: Callable[[object], object], seed: object) -> object:
    value = seed
    for _ in range(levels - 1):
        value = wrap(value)
    return value


def _in_list(value: object) -> object:
    return [value]


def _in_map(value: object) -> object:
    return {"k": value}


def _in_message(value: object) -> object:
    return UnknownMessage(NEST, {"k": value})


NESTINGS: dict[str, tuple[Callable[[object], object], object]] = {
    "lists": (_in_list, []),
    "maps": (_in_map, {}),
    "messages": (_in_message, UnknownMessage(NEST, {})),
}


def self_containing_list() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    return loop


def self_containing_dict() -> dict[str, object]:
    loop: dict[str, object] = {}
    loop["self"] = loop
    return loop


OUTSIDE_THE_MODEL: list[tuple[str, object]] = [
    ("set", {1, 2}),
    ("frozenset", frozenset({1})),
    ("complex", 1j),
    ("datetime", datetime.datetime(2024, 1, 1)),
    ("decimal", decimal.Decimal("1.5")),
    ("object", object()),
    ("class", int),
    ("function", len),
    ("range", range(3)),
    ("unregistered dataclass", _Unregistered(1)),
    ("bytes key", {b"k": 1}),
    ("float key", {1.5: 1}),
    ("None key", {None: 1}),
    ("tuple key", {(1,): 1}),
    ("bool key", {True: 1}),
    ("int above the range", MODEL_INT_MAX + 1),
    ("int below the range", MODEL_INT_MIN - 1),
    ("lone surrogate", "\ud800"),
]
WRAPPERS: list[tuple[str, Callable[[object], object]]] = [
    ("in a list", _in_list),
    ("in a dict", _in_map),
    ("in a message", lambda value: KitSample(text="t", items=[value])),
]
MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]),
              st.integers(0, 1 << 16), st.integers(0, 255)),
    min_size=1, max_size=4)


def mutated(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    damaged = bytearray(data)
    for operation, position, byte in mutations:
        at = position % (len(damaged) + 1)
        if operation == "insert":
            damaged.insert(at, byte)
        elif operation == "cut":
            del damaged[at:]
        elif damaged and at < len(damaged):
            if operation == "flip":
                damaged[at] ^= byte or 1
            else:
                del damaged[at]
    return bytes(damaged)
