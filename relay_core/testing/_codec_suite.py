"""The codec conformance suite: what every codec plugin must do, as pytest tests.

A plugin author subclasses :class:`CodecConformance` in a ``Test*`` class and
returns a codec from ``make_codec``; pytest collects the inherited tests. The
values it uses, and the data model's limits, are in ``_codec_samples``.

The suite's message types (``net_relay_kit.*``) live in
:data:`relay_core.message_types`, so the codec under test must use that
registry, which is what codecs do unless given another.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..errors import DecodeError, EncodeError
from ..interfaces import Codec
from ..protocol.messages import UnknownMessage
from ._codec_samples import (
    MODEL_INT_MAX,
    MODEL_INT_MIN,
    MODEL_MAX_DEPTH,
    MUTATIONS,
    NESTINGS,
    OUTSIDE_THE_MODEL,
    VERSIONED,
    WRAPPERS,
    KitSample,
    KitVersioned,
    canonical,
    model_values,
    mutated,
    nested,
    self_containing_dict,
    self_containing_list,
)
from ._registration import declaration_problems, registered_names

__all__ = ["CodecConformance"]

# Inherited @given tests run on many subclasses: that is the point of the suite.
_RELAXED = settings(deadline=None,
                    suppress_health_check=[HealthCheck.differing_executors, HealthCheck.too_slow])


class CodecConformance:
    """Subclass in a ``Test*`` class and implement :meth:`make_codec`; pytest runs the rest."""

    nesting_bomb_levels: ClassVar[int] = 100_000
    """How deep the decoder's depth-bomb input nests."""

    def make_codec(self) -> Codec:
        """Return the codec under test, using the default :data:`relay_core.message_types`."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_codec()")

    def deeply_nested_encoding(self, kind: str, levels: int) -> bytes | None:
        """Bytes encoding ``levels`` nested ``kind`` (lists, maps or messages), or None.

        The default derives them from the codec's own output for one, two and
        three levels, which works for formats that wrap a value in a fixed prefix
        and suffix (CBOR, JSON, msgpack arrays and maps). Override it for a kind
        your format length-prefixes; a None skips that test.
        """
        wrap, seed = NESTINGS[kind]
        codec = self.make_codec()
        shapes = [codec.encode(nested(count, wrap, seed)) for count in (1, 2, 3)]
        parts = _prefix_and_suffix(*shapes)
        if parts is None:
            return None
        prefix, suffix = parts
        return prefix * (levels - 1) + shapes[0] + suffix * (levels - 1)

    def _round_trip(self, value: object) -> object:
        codec = self.make_codec()
        return codec.decode(codec.encode(value))

    def _assert_survives(self, value: object) -> None:
        assert canonical(self._round_trip(value)) == canonical(value)

    # -- names ---------------------------------------------------------------

    def test_the_name_is_accepted_by_the_registry(self) -> None:
        cls = type(self.make_codec())
        assert registered_names(cls) == [cls.name]

    def test_declared_options_match_the_constructor(self) -> None:
        problems = declaration_problems(type(self.make_codec()))
        assert not problems, "; ".join(problems)

    # -- round trips ---------------------------------------------------------

    @_RELAXED
    @given(value=model_values())
    def test_every_kind_of_value_in_the_data_model_survives_a_round_trip(
        self, value: object
    ) -> None:
        self._assert_survives(value)

    @pytest.mark.parametrize("value", [
        MODEL_INT_MIN, MODEL_INT_MIN + 1, -(2**32) - 1, -(2**31), -1, 0, 1, 2**31, 2**32,
        2**53 + 1, 2**63 - 1, 2**63, MODEL_INT_MAX - 1, MODEL_INT_MAX,
    ])
    def test_ints_at_the_edges_of_the_range_survive_as_ints(self, value: int) -> None:
        decoded = self._round_trip(value)
        assert type(decoded) is int and decoded == value

    @pytest.mark.parametrize("value", [True, False, None, 0.0, 1.0, -2.5, 1e308, 5e-324])
    def test_bools_none_and_whole_floats_keep_their_type(self, value: object) -> None:
        decoded = self._round_trip(value)
        assert type(decoded) is type(value) and decoded == value

    @pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
    def test_non_finite_floats_survive(self, value: float) -> None:
        self._assert_survives(value)

    @pytest.mark.parametrize("value", [
        "", "plain", "é", "日本語", "\U0001f600", "\x00", "\u2028\u2029", "a" * 70_000,
    ])
    def test_unicode_text_survives_as_str(self, value: str) -> None:
        decoded = self._round_trip(value)
        assert type(decoded) is str and decoded == value

    @pytest.mark.parametrize("value", [b"", b"\x00\xff", bytes(range(256)), bytearray(b"ab"),
                                       memoryview(b"view"), b"\x00" * 70_000])
    def test_bytes_bytearray_and_memoryview_arrive_as_bytes(self, value: bytes) -> None:
        decoded = self._round_trip(value)
        assert type(decoded) is bytes and decoded == bytes(value)

    def test_tuples_arrive_as_lists(self) -> None:
        assert self._round_trip((1, ("a", b"b"), [()])) == [1, ["a", b"b"], [[]]]

    def test_dicts_keep_their_str_keys_and_order(self) -> None:
        value = {"z": 1, "": 2, "$bytes": 3, "é": {"$message": [], "$dict": None}}
        decoded = self._round_trip(value)
        assert decoded == value and isinstance(decoded, dict) and list(decoded) == list(value)

    @pytest.mark.parametrize("kind", ["lists", "maps"])
    def test_nesting_up_to_the_depth_limit_survives(self, kind: str) -> None:
        wrap, seed = NESTINGS[kind]
        self._assert_survives(nested(MODEL_MAX_DEPTH, wrap, seed))

    # -- messages ------------------------------------------------------------

    def test_a_registered_message_arrives_as_its_class(self) -> None:
        sample = KitSample(text="hé", number=MODEL_INT_MIN, blob=b"\x00", items=[1.5, None])
        assert self._round_trip(sample) == sample

    def test_messages_nested_in_messages_and_containers_survive(self) -> None:
        inner = KitVersioned(required=3, tags=["a"])
        value = {"list": [inner, KitSample(text="x", items=[inner, {"deep": inner}])]}
        assert self._round_trip(value) == value

    def test_an_unregistered_type_arrives_as_unknown_message_that_encodes_the_same(
        self,
    ) -> None:
        codec = self.make_codec()
        original = UnknownMessage("net_relay_kit.NotRegistered", {"a": 1, "b": [b"x", "y"]})
        decoded = codec.decode(codec.encode(original))
        assert decoded == original
        assert codec.encode(decoded) == codec.encode(original)

    def test_decoding_ignores_fields_the_receiver_does_not_know(self) -> None:
        newer = UnknownMessage(VERSIONED, {"required": 1, "added_later": "x", "tags": ["t"],
                                            "from_version_n_plus_1": {"n": 2}})
        assert self._round_trip(newer) == KitVersioned(required=1, added_later="x", tags=["t"])

    def test_decoding_fills_fields_the_sender_did_not_know_with_their_defaults(self) -> None:
        older = UnknownMessage(VERSIONED, {"required": 7})
        assert self._round_trip(older) == KitVersioned(required=7, added_later="default", tags=[])

    def test_decoding_a_message_without_a_required_field_raises_decode_error(self) -> None:
        codec = self.make_codec()
        encoded = codec.encode(UnknownMessage(VERSIONED, {"added_later": "x"}))
        with pytest.raises(DecodeError):
            codec.decode(encoded)

    # -- what does not encode ------------------------------------------------

    @pytest.mark.parametrize("value", [value for _, value in OUTSIDE_THE_MODEL],
                             ids=[name for name, _ in OUTSIDE_THE_MODEL])
    def test_a_value_outside_the_model_raises_encode_error(self, value: object) -> None:
        with pytest.raises(EncodeError):
            self.make_codec().encode(value)

    @pytest.mark.parametrize("wrap", [wrap for _, wrap in WRAPPERS],
                             ids=[name for name, _ in WRAPPERS])
    @pytest.mark.parametrize("value", [value for _, value in OUTSIDE_THE_MODEL],
                             ids=[name for name, _ in OUTSIDE_THE_MODEL])
    def test_a_value_outside_the_model_raises_encode_error_wherever_it_isnested(
        self, value: object, wrap: Callable[[object], object]
    ) -> None:
        with pytest.raises(EncodeError):
            self.make_codec().encode(wrap(value))

    @pytest.mark.parametrize("kind", ["lists", "maps"])
    def test_nesting_deeper_than_the_limit_raises_encode_error(self, kind: str) -> None:
        wrap, seed = NESTINGS[kind]
        with pytest.raises(EncodeError):
            self.make_codec().encode(nested(MODEL_MAX_DEPTH + 1, wrap, seed))

    @pytest.mark.parametrize("make", [self_containing_list, self_containing_dict],
                             ids=["list", "dict"])
    def test_a_value_that_contains_itself_raises_encode_error(
        self, make: Callable[[], object]
    ) -> None:
        with pytest.raises(EncodeError):
            self.make_codec().encode(make())

    @_RELAXED
    @given(first=model_values(), second=model_values())
    def test_encoding_does_not_depend_on_earlier_calls(
        self, first: object, second: object
    ) -> None:
        codec = self.make_codec()
        before = codec.encode(first)
        codec.encode(second)
        assert codec.encode(first) == before

    # -- what does not decode ------------------------------------------------

    def _decodes_into_the_model_or_refuses(self, data: bytes) -> None:
        codec = self.make_codec()
        try:
            value = codec.decode(data)
        except DecodeError:
            return
        codec.encode(value)  # whatever decodes lies inside the model, so it encodes again

    @_RELAXED
    @given(data=st.binary(max_size=512))
    def test_random_bytes_decode_into_the_model_or_raise_decode_error(self, data: bytes) -> None:
        self._decodes_into_the_model_or_refuses(data)

    @_RELAXED
    @given(value=model_values(), mutations=MUTATIONS)
    def test_damaged_encodings_decode_into_the_model_or_raise_decode_error(
        self, value: object, mutations: list[tuple[str, int, int]]
    ) -> None:
        encoded = self.make_codec().encode(value)
        self._decodes_into_the_model_or_refuses(mutated(encoded, mutations))

    @pytest.mark.parametrize("kind", list(NESTINGS))
    def test_deeply_nested_input_raises_decode_error(self, kind: str) -> None:
        bomb = self.deeply_nested_encoding(kind, self.nesting_bomb_levels)
        if bomb is None:
            pytest.skip(f"cannot derive nested {kind} for this format: "
                        "override deeply_nested_encoding() to test them")
        with pytest.raises(DecodeError):
            self.make_codec().decode(bomb)


def _prefix_and_suffix(one: bytes, two: bytes, three: bytes) -> tuple[bytes, bytes] | None:
    """The bytes one level of nesting adds before and after, if every level adds the same."""
    start = two.find(one)
    while start != -1:
        prefix, suffix = two[:start], two[start + len(one):]
        if prefix + suffix and three == prefix + two + suffix:
            return prefix, suffix
        start = two.find(one, start + 1)
    return None
