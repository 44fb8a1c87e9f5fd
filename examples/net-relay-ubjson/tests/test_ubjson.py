"""The UBJSON this codec writes is UBJSON (draft 12), byte for byte (an int, lengths
included, takes the smallest marker that holds it), and it is found as an installed
plugin. Only net-relay's public names are used."""

from __future__ import annotations

import pytest
from net_relay_ubjson import UbjsonCodec

from relay_core import DecodeError, PluginRegistry

SPEC_EXAMPLES = [
    pytest.param(None, b"Z", id="null"),
    pytest.param(True, b"T", id="true"),
    pytest.param(-1, b"i\xff", id="int8"),
    pytest.param(200, b"U\xc8", id="uint8"),
    pytest.param(1000, b"I\x03\xe8", id="int16"),
    pytest.param(2**40, b"L\x00\x00\x01\x00\x00\x00\x00\x00", id="int64"),
    pytest.param(2**64 - 1, b"Hi\x1418446744073709551615", id="high-precision"),
    pytest.param(1.5, b"D?\xf8\x00\x00\x00\x00\x00\x00", id="float64"),
    pytest.param("hé", b"Si\x03h\xc3\xa9", id="string"),
    pytest.param(b"\x00\x01", b"[$U#i\x02\x00\x01", id="bytes-as-uint8-array"),
    pytest.param([1, "a"], b"[i\x01Si\x01a]", id="array"),
    pytest.param({"k": None}, b"{i\x01kZ}", id="object"),
]


@pytest.mark.parametrize(("value", "encoding"), SPEC_EXAMPLES)
def test_values_are_written_as_ubjson_draft_12(value: object, encoding: bytes) -> None:
    codec = UbjsonCodec()
    assert codec.encode(value) == encoding
    assert codec.decode(encoding) == value


def test_an_unknown_optimized_container_is_refused_not_misread() -> None:
    with pytest.raises(DecodeError, match=r"only \[\$U# \(bytes\) is read"):
        UbjsonCodec().decode(b"[$i#U\x02\x01\x02")


def test_the_installed_plugin_is_found_by_its_entry_point() -> None:
    registry = PluginRegistry.load()
    assert "ubjson" in registry.codec_names()
    row = next(p for p in registry.plugins() if p.name == "ubjson")
    assert (row.kind, row.distribution) == ("codec", "net-relay-ubjson")
