"""The msgpack, CBOR and JSON codecs: one data model, exact edges, hostile input.

Equality after a round trip is the data model's: tuples come back as lists,
bytearray and memoryview as bytes, subclasses as their base type, and NaN
equals NaN (see ``normal``).
"""

from __future__ import annotations

import ast
import enum
import importlib.metadata
import json
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cbor2
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay_codecs import (
    CborCodec,
    JsonCodec,
    MsgpackCodec,
    NoCompressor,
    ZstdCompressor,
    _cbor,
    _json,
    _msgpack,
)
from relay_core import (
    Codec,
    Compressor,
    DecodeError,
    EncodeError,
    MessageTypes,
    UnknownMessage,
    message,
    message_types,
)

INT_MIN, INT_MAX = -(2**63), 2**64 - 1
CODECS: list[type[Codec]] = [MsgpackCodec, CborCodec, JsonCodec]
COMPRESSORS: list[Compressor] = [ZstdCompressor(min_size=0), NoCompressor()]
LIMIT = 1 << 20


@message("test_codecs.Point")
@dataclass(frozen=True)
class Point:
    x: float
    y: float = 0.0


@message("test_codecs.Box")
@dataclass
class Box:
    label: str
    content: object = None
    items: list[object] = field(default_factory=list)


@pytest.fixture(params=CODECS, ids=lambda cls: cls.name)
def codec(request: pytest.FixtureRequest) -> Codec:
    return request.param()  # type: ignore[no-any-return]


def normal(value: object) -> object:
    """The canonical form two values must share to count as equal after a round trip."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (list, tuple)):
        return [normal(item) for item in value]
    if isinstance(value, dict):
        return {key: normal(item) for key, item in value.items()}
    pair = message_types.describe(value)
    if pair is not None:
        return ("message", pair[0], normal(pair[1]))
    return value


# --- strategies for the whole data model ----------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.floats()
    | st.text()
    | st.binary()
    | st.binary().map(bytearray)
)
marker_like = st.sampled_from(["$bytes", "$float", "$message", "$dict", "$", "$other"])
str_keys = st.text(max_size=8) | marker_like


def values(keys: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    def extend(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
        return (
            st.lists(children, max_size=4)
            | st.lists(children, max_size=3).map(tuple)
            | st.dictionaries(keys, children, max_size=4)
            | st.builds(Point, st.floats(allow_nan=False), st.floats(allow_nan=False))
            | st.builds(Box, st.text(max_size=5), children, st.lists(children, max_size=2))
            | st.builds(
                UnknownMessage,
                st.sampled_from(["other.Thing", "other.v2.Thing"]),
                st.dictionaries(str_keys, children, max_size=3),
            )
        )

    return st.recursive(scalars, extend, max_leaves=12)


def model_for(codec: Codec) -> st.SearchStrategy[object]:
    if codec.name == "json":
        return values(str_keys)
    return values(str_keys | st.integers(INT_MIN, INT_MAX))


def encodings(codec: Codec) -> st.SearchStrategy[bytes]:
    return model_for(codec).map(codec.encode)


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("compressor", COMPRESSORS, ids=lambda c: c.name)
@settings(max_examples=150,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_value_survives_encode_compress_decompress_decode(
    codec: Codec, compressor: Compressor, data: st.DataObject
) -> None:
    value = data.draw(model_for(codec))
    payload = codec.encode(value)
    compressed = compressor.compress(payload)
    if compressed is not None:
        payload = compressor.decompress(compressed, LIMIT)
    assert normal(codec.decode(payload)) == normal(value)


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -1, INT_MIN, INT_MAX, 1.5, -0.0, "", "ünï", b"", b"\x00\xff", [], {}],
    ids=repr,
)
def test_scalars_and_empty_containers_round_trip_exactly(codec: Codec, value: object) -> None:
    decoded = codec.decode(codec.encode(value))
    assert decoded == value and type(decoded) is type(value)


@pytest.mark.parametrize("special", [math.inf, -math.inf, math.nan])
def test_non_finite_floats_round_trip(codec: Codec, special: float) -> None:
    assert normal(codec.decode(codec.encode(special))) == normal(special)


def test_tuples_decode_as_lists(codec: Codec) -> None:
    assert codec.decode(codec.encode((1, (2, 3)))) == [1, [2, 3]]


def test_bytearray_and_memoryview_decode_as_bytes(codec: Codec) -> None:
    value = {"a": bytearray(b"ab"), "m": memoryview(b"cd")}
    assert codec.decode(codec.encode(value)) == {"a": b"ab", "m": b"cd"}


def test_subclasses_of_model_types_encode_as_their_base_type(codec: Codec) -> None:
    class Colour(enum.IntEnum):
        RED = 1

    class Name(str, enum.Enum):  # a str mixin: its str() is not its value
        ADA = "ada"

    decoded = codec.decode(codec.encode({"c": Colour.RED, Name.ADA: [Name.ADA]}))
    assert decoded == {"c": 1, "ada": ["ada"]}
    assert type(decoded["c"]) is int  # type: ignore[index]


def test_nested_registered_messages_round_trip(codec: Codec) -> None:
    value = Box("outer", Box("inner", Point(1.0, 2.0)), [{"p": Point(3.0)}, [Point(4.0)]])
    assert codec.decode(codec.encode(value)) == value


def test_int_keys_round_trip_on_msgpack_and_cbor() -> None:
    for codec in (MsgpackCodec(), CborCodec()):
        assert codec.decode(codec.encode({1: "a", -2: "b", "c": 3})) == {1: "a", -2: "b", "c": 3}


# --- version interop -------------------------------------------------------------------------


@dataclass
class OrderV1:
    id: int
    note: str = ""


@dataclass
class OrderV2:
    id: int
    priority: int = 0
    tags: list[str] = field(default_factory=list)


def registry(cls: type) -> MessageTypes:
    types = MessageTypes()
    types.register("shop.Order", cls)
    return types


@pytest.mark.parametrize("codec_class", CODECS, ids=lambda cls: cls.name)
def test_version_one_reads_version_two_and_back(codec_class: type[Codec]) -> None:
    v1 = codec_class(types=registry(OrderV1))  # type: ignore[call-arg]
    v2 = codec_class(types=registry(OrderV2))  # type: ignore[call-arg]
    assert v2.decode(v1.encode(OrderV1(7, note="fragile"))) == OrderV2(7)
    assert v1.decode(v2.encode(OrderV2(8, priority=2, tags=["x"]))) == OrderV1(8)


@pytest.mark.parametrize("codec_class", CODECS, ids=lambda cls: cls.name)
def test_a_missing_required_field_names_type_and_field(codec_class: type[Codec]) -> None:
    sender = codec_class(types=MessageTypes())  # type: ignore[call-arg]
    receiver = codec_class(types=registry(OrderV1))  # type: ignore[call-arg]
    payload = sender.encode(UnknownMessage("shop.Order", {"note": "no id"}))
    with pytest.raises(DecodeError, match=r"'shop\.Order'.*'id'"):
        receiver.decode(payload)


@pytest.mark.parametrize("codec_class", CODECS, ids=lambda cls: cls.name)
def test_an_unknown_type_is_kept_and_forwarded_as_the_same_type(codec_class: type[Codec]) -> None:
    knows = codec_class(types=registry(OrderV2))  # type: ignore[call-arg]
    router = codec_class(types=MessageTypes())  # type: ignore[call-arg]
    unknown = router.decode(knows.encode(OrderV2(9, tags=["a"])))
    assert unknown == UnknownMessage("shop.Order", {"id": 9, "priority": 0, "tags": ["a"]})
    assert knows.decode(router.encode(unknown)) == OrderV2(9, tags=["a"])


# --- what encoders refuse --------------------------------------------------------------------


@pytest.mark.parametrize("value", [INT_MAX + 1, INT_MIN - 1, 2**200, -(2**200)], ids=str)
def test_ints_outside_the_range_are_refused_naming_value_and_range(
    codec: Codec, value: int
) -> None:
    with pytest.raises(EncodeError, match=r"outside the range -2\*\*63 \.\. 2\*\*64-1"):
        codec.encode({"n": [value]})


@pytest.mark.parametrize(
    "value", [{1, 2}, object(), 1j, range(3), Path("x")], ids=lambda v: type(v).__name__
)
def test_values_outside_the_model_are_refused_naming_the_type(codec: Codec, value: object) -> None:
    with pytest.raises(EncodeError, match=f"cannot encode {type(value).__qualname__}.*allowed"):
        codec.encode([value])


def test_unregistered_dataclasses_are_refused(codec: Codec) -> None:
    @dataclass
    class Unregistered:
        x: int

    with pytest.raises(EncodeError, match="Unregistered"):
        codec.encode(Unregistered(1))


@pytest.mark.parametrize("key", [b"k", 1.5, None, (1, 2), True], ids=repr)
def test_dict_keys_must_be_str_or_int(codec: Codec, key: object) -> None:
    with pytest.raises(EncodeError, match="dict key"):
        codec.encode({key: 1})


def test_json_refuses_int_keys_and_points_to_the_other_codecs() -> None:
    with pytest.raises(EncodeError, match="msgpack and cbor"):
        JsonCodec().encode({1: "a"})


def test_lone_surrogates_are_refused(codec: Codec) -> None:
    with pytest.raises(EncodeError, match="surrogate"):
        codec.encode("\ud800")


def test_nesting_is_bounded_at_256_levels(codec: Codec) -> None:
    def nest(levels: int) -> object:
        value: object = 0
        for index in range(levels):
            value = [value] if index % 2 else {"k": value}
        return value

    assert codec.decode(codec.encode(nest(256))) == nest(256)
    with pytest.raises(EncodeError, match="deeper than 256"):
        codec.encode(nest(257))


def test_a_value_that_contains_itself_is_refused(codec: Codec) -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="contains itself"):
        codec.encode(loop)


def nest_boxes(levels: int) -> object:
    value: object = 0
    for _ in range(levels):
        value = Box("b", value)
    return value


def test_messages_count_two_levels_and_decode_at_full_depth(codec: Codec) -> None:
    # Box k sits at level 2k-1 and its field map at 2k; the innermost empty
    # items list is at 2 * levels + 1, so 127 boxes fit in 256 levels.
    assert codec.decode(codec.encode(nest_boxes(127))) == nest_boxes(127)
    with pytest.raises(EncodeError, match="deeper than 256"):
        codec.encode(nest_boxes(128))


# --- hostile and malformed input -------------------------------------------------------------


@settings(max_examples=300,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.binary(max_size=200))
def test_decoding_arbitrary_bytes_raises_only_decode_error(codec: Codec, data: bytes) -> None:
    try:
        codec.decode(data)
    except DecodeError:
        pass


@settings(max_examples=300,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_decoding_mutated_encodings_raises_only_decode_error(
    codec: Codec, data: st.DataObject
) -> None:
    payload = bytearray(data.draw(encodings(codec)))
    position = data.draw(st.integers(0, len(payload)))
    action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    if action == "flip" and position < len(payload):
        payload[position] ^= data.draw(st.integers(1, 255))
    elif action == "cut":
        del payload[position:]
    else:
        payload[position:position] = data.draw(st.binary(min_size=1, max_size=4))
    try:
        codec.decode(bytes(payload))
    except DecodeError:
        pass


def test_trailing_bytes_after_one_value_are_refused(codec: Codec) -> None:
    with pytest.raises(DecodeError):
        codec.decode(codec.encode([1, 2]) + codec.encode(3))


def test_empty_input_is_refused(codec: Codec) -> None:
    with pytest.raises(DecodeError):
        codec.decode(b"")


@pytest.mark.parametrize(
    ("codec_class", "deep"),
    [
        (MsgpackCodec, b"\x91" * 100_000 + b"\x00"),
        (CborCodec, b"\x81" * 100_000 + b"\x00"),
        (JsonCodec, b"[" * 100_000 + b"]" * 100_000),
        (MsgpackCodec, b"\x91" * 300 + b"\x00"),
        (CborCodec, b"\x81" * 300 + b"\x00"),
        (JsonCodec, b"[" * 300 + b"]" * 300),
    ],
    ids=["msgpack-huge", "cbor-huge", "json-huge", "msgpack-257", "cbor-257", "json-257"],
)
def test_deeply_nested_input_is_refused_without_recursion_error(
    codec_class: type[Codec], deep: bytes
) -> None:
    with pytest.raises(DecodeError):
        codec_class().decode(deep)


def test_deeply_nested_msgpack_messages_are_refused() -> None:
    payload = msgpack.packb(0)
    for _ in range(5000):
        payload = msgpack.packb(msgpack.ExtType(1, msgpack.packb(["a.B", {"v": 0}])[:-1] + payload))
    with pytest.raises(DecodeError, match="deeper than 256"):
        MsgpackCodec().decode(payload)


@pytest.mark.parametrize(
    ("codec_class", "payload"),
    [
        (CborCodec, bytes.fromhex("3bffffffffffffffff")),  # -2**64, a native CBOR int
        (CborCodec, cbor2.dumps(2**64)),  # a bignum
        (CborCodec, cbor2.dumps(-(2**64) - 1)),
        (JsonCodec, str(INT_MAX + 1).encode()),
        (JsonCodec, str(INT_MIN - 1).encode()),
        (JsonCodec, b"9" * 5000),
    ],
    ids=["cbor-native", "cbor-bignum", "cbor-neg-bignum", "json-high", "json-low", "json-huge"],
)
def test_decoded_ints_outside_the_range_are_refused(
    codec_class: type[Codec], payload: bytes
) -> None:
    with pytest.raises(DecodeError):
        codec_class().decode(payload)


def test_cbor_bignums_within_the_range_are_accepted() -> None:
    assert CborCodec().decode(bytes.fromhex("c24101")) == 1


@pytest.mark.parametrize(
    "payload",
    [
        cbor2.dumps(cbor2.CBORTag(1, 0)),  # datetime
        cbor2.dumps(cbor2.CBORTag(258, [1])),  # set
        cbor2.dumps(cbor2.CBORTag(9999, 0)),  # unknown tag
        bytes.fromhex("f7"),  # undefined
        bytes.fromhex("f0"),  # simple value 16
        cbor2.dumps({b"k": 1}),
        cbor2.dumps(cbor2.CBORTag(27, ["a.B", {1: 2}])),
        cbor2.dumps(cbor2.CBORTag(27, ["a.B"])),
    ],
    ids=["datetime", "set", "unknown-tag", "undefined", "simple", "bytes-key", "int-key", "1-item"],
)
def test_cbor_outside_the_model_is_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        CborCodec().decode(payload)


def test_cbor_self_described_prefix_is_transparent() -> None:
    assert CborCodec().decode(bytes.fromhex("d9d9f7") + cbor2.dumps([1])) == [1]


@pytest.mark.parametrize(
    "payload",
    [
        msgpack.packb(msgpack.Timestamp(1)),
        msgpack.packb(msgpack.ExtType(5, b"x")),
        msgpack.packb({b"k": 1}),
        msgpack.packb({None: 1}),
        b"\xa1\xff",  # a str that is not UTF-8
    ],
    ids=["timestamp", "ext-5", "bytes-key", "nil-key", "bad-utf8"],
)
def test_msgpack_outside_the_model_is_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        MsgpackCodec().decode(payload)


# --- the exact encodings (docs/codecs.md) ----------------------------------------------------


def test_msgpack_writes_a_message_as_ext_type_1_over_name_and_fields() -> None:
    payload = MsgpackCodec().encode(Point(1.0, 2.0))
    assert msgpack.unpackb(payload) == msgpack.ExtType(
        _msgpack.EXT_MESSAGE, msgpack.packb(["test_codecs.Point", {"x": 1.0, "y": 2.0}])
    )


def test_cbor_writes_a_message_as_tag_27_over_name_and_fields() -> None:
    payload = CborCodec().encode(Point(1.0, 2.0))
    assert payload == cbor2.dumps(
        cbor2.CBORTag(_cbor.TAG_MESSAGE, ["test_codecs.Point", {"x": 1.0, "y": 2.0}])
    )


def test_json_is_compact_utf8_with_markers() -> None:
    value = {"b": b"\x00\xff", "f": math.nan, "p": Point(1.0), "t": "é"}
    assert JsonCodec().encode(value).decode("utf-8") == (
        '{"b":{"$bytes":"AP8="},"f":{"$float":"nan"},'
        '"p":{"$message":["test_codecs.Point",{"x":1.0,"y":0.0}]},"t":"é"}'
    )


@pytest.mark.parametrize(
    "value",
    [
        {"$bytes": "AP8="},
        {"$float": "nan"},
        {"$message": ["a.B", {}]},
        {"$dict": {"$dict": 1}},
        {"$": None},
        {"$other": [1]},
        {"$bytes": "x", "other": 1},
    ],
    ids=repr,
)
def test_json_dicts_that_look_like_markers_round_trip(value: dict[str, object]) -> None:
    codec = JsonCodec()
    assert codec.decode(codec.encode(value)) == value


def test_json_escapes_only_single_dollar_key_dicts() -> None:
    codec = JsonCodec()
    assert codec.encode({"$x": 1}) == b'{"$dict":{"$x":1}}'
    assert codec.encode({"$x": 1, "y": 2}) == b'{"$x":1,"y":2}'


@pytest.mark.parametrize(
    "payload",
    [
        b'{"$unknown":1}',
        b'{"$bytes":"not base64!"}',
        b'{"$bytes":5}',
        b'{"$float":"zero"}',
        b'{"$message":["a.B"]}',
        b'{"$dict":[1]}',
        b"NaN",
        b"[Infinity]",
        b"\xff",
        b"{'a': 1}",
        b"\xef\xbb\xbf[]",
    ],
    ids=repr,
)
def test_json_malformed_markers_and_text_are_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        JsonCodec().decode(payload)


def test_json_output_is_what_a_plain_json_parser_reads() -> None:
    payload = JsonCodec().encode({"list": [1, 2.5, None, True, "x"]})
    assert json.loads(payload) == {"list": [1, 2.5, None, True, "x"]}


# --- packaging -------------------------------------------------------------------------------


def test_each_codec_has_an_entry_point_whose_plugin_provides_it_alone() -> None:
    for cls in (MsgpackCodec, CborCodec, JsonCodec):
        (entry_point,) = importlib.metadata.entry_points(group="net_relay", name=cls.name)
        plugin = entry_point.load()
        assert (plugin.net_relay_codecs(), plugin.net_relay_compressors()) == ([cls], [])
    assert [cls.name for cls in CODECS] == ["msgpack", "cbor", "json"]


def test_the_package_exports_exactly_its_public_names() -> None:
    import relay_codecs

    assert sorted(relay_codecs.__all__) == [
        "CborCodec",
        "JsonCodec",
        "MsgpackCodec",
        "NoCompressor",
        "ZstdCompressor",
        "train_dictionary",
    ]
    with pytest.raises(AttributeError):
        relay_codecs.Nothing  # noqa: B018


def test_a_missing_zstandard_leaves_the_codecs_importable() -> None:
    script = (
        "import sys; sys.modules['zstandard'] = None\n"
        "import relay_codecs\n"
        "assert relay_codecs.MsgpackCodec().decode(relay_codecs.MsgpackCodec().encode(1)) == 1\n"
        "try:\n    relay_codecs.ZstdCompressor\nexcept ImportError:\n    print('unavailable')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip() == "unavailable"


SANS_IO_MODULES = ["_model", "_msgpack", "_msgpack_fast", "_cbor", "_json", "_zstd", "_none"]


@pytest.mark.parametrize("module", SANS_IO_MODULES)
def test_codec_modules_do_no_io(module: str) -> None:
    package = Path(__file__).resolve().parents[2] / "relay_codecs"
    tree = ast.parse((package / f"{module}.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert not imported & {"socket", "asyncio", "time", "threading", "pickle"}


# --- fast paths: they skip the walks only where the C libraries already hold the model -------

near_model_leaves = (
    scalars
    | st.integers(INT_MIN - 2**70, INT_MAX + 2**70)
    | st.sampled_from(
        [
            msgpack.ExtType(5, b"x"),
            msgpack.Timestamp(1),
            cbor2.CBORTag(1, 0),
            cbor2.undefined,
            frozenset({1}),
            (1, 2),
            memoryview(b"m"),
            Point(1.0),
            math.nan,
            {"$bytes": "AP8="},
        ]
    )
)
near_model_keys = str_keys | st.integers(-3, 3) | st.sampled_from([b"k", 1.5, None, True, (1,)])
near_model = st.recursive(
    near_model_leaves,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(near_model_keys, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300)
@given(value=near_model)
def test_is_plain_answers_true_only_for_values_the_walk_accepts(value: object) -> None:
    from relay_codecs._model import EncodeChecker, is_plain

    checker = EncodeChecker(message_types, int_keys=False, memoryview_ok=True)
    # msgpack lists int among its leaves because its packer checks the range;
    # without int there, is_plain checks it, and must agree with the walk.
    for leaves in (_msgpack._PLAIN_LEAVES, _cbor._PLAIN_LEAVES, _json._PLAIN_LEAVES):
        if is_plain(value, leaves - {int}):
            checker.check(value)


@pytest.mark.parametrize("value", [["a"], {"k": "a"}, [["a"]], [{"k": "a"}]])
def test_is_plain_takes_strings_as_leaves_only_where_the_leaves_say_so(value: object) -> None:
    from relay_codecs._model import is_plain

    assert is_plain(value, frozenset({str}))
    assert not is_plain(value, frozenset({float, bytes}))


@settings(max_examples=200,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=near_model)
def test_near_model_values_either_round_trip_or_raise_encode_error(
    codec: Codec, value: object
) -> None:
    try:
        payload = codec.encode(value)
    except EncodeError:
        return
    assert normal(codec.decode(payload)) == normal(value)


@pytest.mark.parametrize(
    "value",
    [
        msgpack.ExtType(5, b"x"),
        [msgpack.ExtType(1, b"\x01")],
        {"t": msgpack.Timestamp(1)},
        Box("b", msgpack.Timestamp(1)),
    ],
    ids=["ext", "ext-in-list", "timestamp-in-dict", "timestamp-in-message"],
)
def test_msgpack_refuses_its_own_extension_objects(value: object) -> None:
    with pytest.raises(EncodeError, match="cannot encode"):
        MsgpackCodec().encode(value)


@pytest.mark.parametrize(
    "payload",
    [
        msgpack.packb({"a": [msgpack.Timestamp(1)]}),
        msgpack.packb([{"a": msgpack.Timestamp(2**40, 5)}]),
        bytes.fromhex("91c704ff00000001"),  # a 4-byte timestamp in a non-canonical ext 8
        msgpack.packb({"a": {b"k": 1}}),
        msgpack.packb(msgpack.ExtType(1, msgpack.packb(["a.B", {"t": msgpack.Timestamp(1)}]))),
        msgpack.packb(msgpack.ExtType(1, msgpack.packb(["a.B", {b"k": 1}]))),
        msgpack.packb(msgpack.ExtType(1, msgpack.packb(["a.B", {}]) + b"\x00")),
        msgpack.packb(msgpack.ExtType(1, msgpack.packb(["a.B", {}]))) + b"\x00",
    ],
    ids=[
        "timestamp-in-list",
        "timestamp-in-dict",
        "ext8-timestamp",
        "nested-bytes-key",
        "timestamp-in-message",
        "bytes-key-in-message",
        "trailing-inside-message",
        "trailing-after-message",
    ],
)
def test_msgpack_outside_the_model_is_refused_in_short_payloads_too(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        MsgpackCodec().decode(payload)


def test_msgpack_reads_a_message_under_any_ext_header_size() -> None:
    pair = msgpack.packb(["test_codecs.Point", {"x": 1.0}])
    header = b"\xc8" + len(pair).to_bytes(2, "big") + b"\x01"  # ext 16, not the shortest
    assert MsgpackCodec().decode(header + pair) == Point(1.0)


@pytest.mark.parametrize(
    ("name", "first_byte"),
    [("a.BCD", 0xD7), ("a.BCDEFGHIJKL", 0xD8), ("a.B" + "C" * 40, 0xC7)],
    ids=["fixext-8", "fixext-16", "ext-8"],
)
def test_msgpack_reads_a_message_under_each_ext_header_it_writes(name: str, first_byte: int) -> None:
    message = UnknownMessage(name, {})
    payload = MsgpackCodec().encode(message)
    assert payload[0] == first_byte
    assert MsgpackCodec().decode(payload) == message


def test_msgpack_reads_a_message_under_an_ext_32_header() -> None:
    pair = msgpack.packb(["test_codecs.Point", {"x": 1.0}])
    header = b"\xc9" + len(pair).to_bytes(4, "big") + b"\x01"
    assert MsgpackCodec().decode(header + pair) == Point(1.0)


@pytest.mark.parametrize(
    "size", [1, 2, 4, 8, 16, 3, 255, 256, 65535, 65536], ids=lambda size: f"{size}B"
)
def test_msgpack_message_headers_match_msgpacks_own(size: int) -> None:
    fields = {"s": "x" * size}
    payload = MsgpackCodec().encode(UnknownMessage("a.B", fields))
    inner = msgpack.packb(["a.B", fields])
    assert payload == msgpack.packb(msgpack.ExtType(_msgpack.EXT_MESSAGE, inner))


@pytest.mark.parametrize(
    "payload",
    [
        cbor2.dumps({"n": [1, -(2**64)]}),  # a native negative int below the range
        bytes.fromhex("a1616181f7"),  # {"a": [undefined]}
        bytes.fromhex("82f001"),  # [simple(16), 1]
        cbor2.dumps(cbor2.CBORTag(27, ["a.B", {"n": -(2**64)}])),
    ],
    ids=["native-int", "undefined", "simple", "in-message"],
)
def test_cbor_outside_the_model_is_refused_when_nested(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        CborCodec().decode(payload)


@pytest.mark.parametrize(
    "value",
    [
        {"a": {"$x": 1}},
        [{"$bytes": "AP8="}],
        {"n": [math.inf]},
        UnknownMessage("a.B", {"$x": {"$float": "nan"}}),
        Box("b", {"$message": 1}),
    ],
    ids=repr,
)
def test_json_marker_like_values_round_trip_at_every_depth(value: object) -> None:
    codec = JsonCodec()
    assert normal(codec.decode(codec.encode(value))) == normal(value)


@pytest.mark.parametrize("value", [{"n": [INT_MAX + 1]}, [{"n": INT_MIN - 1}]], ids=repr)
def test_ints_outside_the_range_are_refused_one_level_down(codec: Codec, value: object) -> None:
    with pytest.raises(EncodeError, match="outside the range"):
        codec.encode(value)


@pytest.mark.parametrize("bad", [[1, INT_MAX + 1], {"s": "\ud800"}], ids=["int", "surrogate"])
def test_a_value_refused_half_way_leaves_the_codec_writing_clean_output(
    codec: Codec, bad: object
) -> None:
    with pytest.raises(EncodeError):
        codec.encode(bad)
    assert codec.decode(codec.encode({"a": 1})) == {"a": 1}


# --- text: what one codec decodes, every codec can encode ------------------------------------

json_text = st.text(st.characters(exclude_categories=[]), max_size=8)
"""Any code points, lone surrogates included: JSON text can spell them as \\uD800 escapes."""
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(INT_MIN, INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False) | json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("payload", [b'"\\ud800"', b'{"\\uDC00":1}', b'["a",{"k":"x\\udfffy"}]',
                                     b'{"$message":["test_codecs.Point",{"x":1,"\\ud800":2}]}',
                                     b'"\\ude00\\ud83d"'], ids=repr)
def test_json_refuses_a_lone_surrogate_escape_as_undecodable(payload: bytes) -> None:
    with pytest.raises(DecodeError, match=r"lone surrogate .*\\ud800 to \\udfff"):
        JsonCodec().decode(payload)


def test_json_decodes_an_escaped_surrogate_pair_as_the_character_it_spells() -> None:
    assert JsonCodec().decode(b'"\\ud83d\\ude00 \\\\ud800"') == "\U0001f600 \\ud800"


@pytest.mark.parametrize("codec_type", [MsgpackCodec, CborCodec])
def test_msgpack_and_cbor_refuse_a_surrogate_in_their_utf8_as_json_does(
        codec_type: type[Codec]) -> None:
    surrogate = "\ud800".encode("utf-8", "surrogatepass")
    # A text string of 3 bytes: msgpack's fixstr 0xa3, CBOR's major type 3 (0x63).
    payload = (b"\xa3" if codec_type is MsgpackCodec else b"\x63") + surrogate
    with pytest.raises(DecodeError):
        codec_type().decode(payload)


@settings(max_examples=400)
@given(value=json_values, ascii_only=st.booleans())
def test_whatever_json_decodes_it_can_encode_and_decode_back_equal(
        value: object, ascii_only: bool) -> None:
    try:
        text = json.dumps(value, ensure_ascii=ascii_only)
        payload = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, unescaped: not UTF-8, so not a payload
        return
    codec = JsonCodec()
    try:
        decoded = codec.decode(payload)
    except DecodeError:
        return
    assert codec.decode(codec.encode(decoded)) == decoded
