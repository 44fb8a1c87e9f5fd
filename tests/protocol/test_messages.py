"""The @message registry: naming, describing and tolerant building of message types."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from relay_core import (
    ConfigError,
    DecodeError,
    EncodeError,
    MessageTypes,
    UnknownMessage,
    message,
    message_types,
)


@message("test_messages.Greeting")
@dataclass(frozen=True)
class Greeting:
    name: str
    lang: str = "en"
    tags: list[str] = field(default_factory=list)


@dataclass
class Plain:
    value: int


@dataclass
class Checked:
    count: int

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("count must not be negative")


def fresh(*pairs: tuple[str, type]) -> MessageTypes:
    types = MessageTypes()
    for type_name, cls in pairs:
        types.register(type_name, cls)
    return types


# --- registering ---------------------------------------------------------------------------


def test_message_registers_in_the_default_registry_and_returns_the_class() -> None:
    assert message_types.describe(Greeting("ada")) == (
        "test_messages.Greeting",
        {"name": "ada", "lang": "en", "tags": []},
    )


def test_registering_a_class_that_is_not_a_dataclass_is_a_type_error() -> None:
    class NotData:
        pass

    with pytest.raises(EncodeError, match="needs a dataclass") as caught:
        MessageTypes().register("demo.NotData", NotData)
    assert isinstance(caught.value, TypeError)


def test_message_placed_below_dataclass_is_refused() -> None:
    with pytest.raises(EncodeError, match="above @dataclass"):

        @dataclass
        @message("test_messages.Misplaced")
        class Misplaced:
            value: int


def test_registering_a_name_twice_for_different_classes_names_both() -> None:
    types = fresh(("demo.Plain", Plain))
    with pytest.raises(ConfigError, match=r"test_messages\.Plain.*test_messages\.Checked"):
        types.register("demo.Plain", Checked)


def test_registering_one_class_under_two_names_is_refused() -> None:
    types = fresh(("demo.Plain", Plain))
    with pytest.raises(ConfigError, match="already registered as 'demo.Plain'"):
        types.register("demo.Plain2", Plain)


def test_registering_the_same_class_and_name_again_is_harmless() -> None:
    types = fresh(("demo.Plain", Plain))
    types.register("demo.Plain", Plain)
    assert types.build("demo.Plain", {"value": 1}) == Plain(1)


@pytest.mark.parametrize("bad", ["", "Greeting", "demo.", ".x", "demo..x", "demo.x y", "démo.x"])
def test_type_names_must_be_dotted_ascii(bad: str) -> None:
    with pytest.raises(ConfigError, match="dotted name"):
        message(bad)


def test_type_names_have_a_length_limit() -> None:
    with pytest.raises(ConfigError, match="longer than"):
        message("demo." + "x" * 300)


# --- describing ------------------------------------------------------------------------------


def test_describe_returns_none_for_unregistered_values() -> None:
    types = fresh()
    assert types.describe(Plain(1)) is None
    assert types.describe({"value": 1}) is None


def test_describe_passes_an_unknown_message_through_unchanged() -> None:
    unknown = UnknownMessage("other.Thing", {"x": 1})
    assert fresh().describe(unknown) == ("other.Thing", {"x": 1})


def test_is_message_knows_registered_instances_and_unknown_messages() -> None:
    types = fresh(("demo.Plain", Plain))
    assert types.is_message(Plain(1))
    assert types.is_message(UnknownMessage("a.B", {}))
    assert not types.is_message(Checked(1))


# --- building (tolerant decoding) ------------------------------------------------------------


def test_build_ignores_fields_it_does_not_know() -> None:
    built = message_types.build("test_messages.Greeting", {"name": "ada", "mood": "happy"})
    assert built == Greeting("ada")


def test_build_fills_missing_fields_from_defaults_and_default_factories() -> None:
    built = message_types.build("test_messages.Greeting", {"name": "ada"})
    assert built == Greeting("ada", "en", [])


def test_build_names_the_type_and_the_missing_required_field() -> None:
    with pytest.raises(DecodeError, match=r"'test_messages\.Greeting'.*'name'"):
        message_types.build("test_messages.Greeting", {"lang": "fr"})


def test_build_of_an_unknown_type_gives_an_unknown_message() -> None:
    assert fresh().build("other.Thing", {"x": [1]}) == UnknownMessage("other.Thing", {"x": [1]})


def test_build_refuses_field_names_that_are_not_str() -> None:
    with pytest.raises(DecodeError, match="field names must be str"):
        fresh().build("other.Thing", {1: "x"})


def test_build_turns_a_class_that_rejects_its_fields_into_a_decode_error() -> None:
    types = fresh(("demo.Checked", Checked))
    with pytest.raises(DecodeError, match="count must not be negative"):
        types.build("demo.Checked", {"count": -1})


def test_build_skips_fields_the_constructor_does_not_take() -> None:
    @dataclass
    class Derived:
        base: int
        double: int = field(init=False)

        def __post_init__(self) -> None:
            self.double = self.base * 2

    types = fresh(("demo.Derived", Derived))
    built = types.build("demo.Derived", {"base": 2, "double": 99})
    assert isinstance(built, Derived) and built.double == 4
