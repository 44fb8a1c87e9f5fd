"""Addresses: what ``SCHEME://HOST:PORT[/ACTOR]`` accepts, refuses and prints."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core.config.address import (
    MAX_ACTOR_NAME_BYTES,
    Address,
    format_host_port,
    parse_address,
)
from relay_core.errors import ConfigError, InvalidAddress

# --- accepted forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("udp://127.0.0.1:9002/greeter", Address("udp", "127.0.0.1", 9002, "greeter")),
        ("udp://[::1]:9002/greeter", Address("udp", "::1", 9002, "greeter")),
        ("tcp://example.internal:7000", Address("tcp", "example.internal", 7000)),
        ("quic://localhost:0", Address("quic", "localhost", 0)),
        ("my-plugin+v2.x://10.0.0.1:65535/a", Address("my-plugin+v2.x", "10.0.0.1", 65535, "a")),
        ("udp://[fe80::1%eth0]:1/a", Address("udp", "fe80::1%eth0", 1, "a")),
        ("udp://svc_a.internal:1/v2~x-y_z", Address("udp", "svc_a.internal", 1, "v2~x-y_z")),
    ],
)
def test_parsing_accepts_the_documented_forms(url: str, expected: Address) -> None:
    assert parse_address(url) == expected


def test_actor_names_may_be_any_printable_unicode() -> None:
    assert parse_address("udp://127.0.0.1:1/grüße-数字").actor == "grüße-数字"


def test_parsing_normalises_scheme_ipv6_and_host_name_case() -> None:
    address = parse_address("UDP://[0:0:0::1]:9/x")
    assert (address.scheme, address.host) == ("udp", "::1")
    assert parse_address("tcp://Example.INTERNAL:7").host == "example.internal"


def test_actor_names_keep_their_case() -> None:
    assert parse_address("udp://h:1/Greeter").actor == "Greeter"


def test_an_actor_name_of_exactly_255_utf8_bytes_is_accepted() -> None:
    name = "é" * 127 + "a"  # 2 * 127 + 1 bytes
    assert len(name.encode()) == MAX_ACTOR_NAME_BYTES
    assert parse_address(f"udp://h:1/{name}").actor == name


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("127.0.0.1:9002/greeter", "scheme is missing"),
        ("udp:/127.0.0.1:9002", "scheme is missing"),
        ("://127.0.0.1:9002", "scheme ''"),
        ("9udp://127.0.0.1:9002", "scheme '9udp'"),
        ("udp://127.0.0.1", "port is missing"),
        ("udp://127.0.0.1:", "port ''"),
        ("udp://127.0.0.1:65536", "port '65536'"),
        ("udp://127.0.0.1:-1", "port '-1'"),
        ("udp://127.0.0.1:+1", "port '+1'"),
        ("udp://127.0.0.1:٣", "port '٣'"),
        ("udp://127.0.0.1:http", "port 'http'"),
        ("udp://::1:9002/greeter", "IPv6 host must be written in brackets"),
        ("udp://[::1:9002", "no matching ']'"),
        ("udp://[::1]9002", "port is missing"),
        ("udp://[127.0.0.1]:9002", "brackets are only for IPv6"),
        ("udp://[]:9002", "brackets are only for IPv6"),
        ("udp://[::g]:9002", "not a valid IPv6"),
        ("udp://:9002", "host is empty"),
        ("udp://1.2.3:9002", "not a valid IPv4"),
        ("udp://256.1.1.1:9002", "not a valid IPv4"),
        ("udp://-bad.example:1", "not a DNS name"),
        ("udp://a..b:1", "not a DNS name"),
        ("udp://bücher.example:1", "IDNA"),
        ("udp://user@127.0.0.1:9002", "user info"),
        ("udp://127.0.0.1:9002/greeter?x=1", "query"),
        ("udp://127.0.0.1:9002/greeter#top", "fragment"),
        ("udp://127.0.0.1:9002/a/b", "'/'"),
        ("udp://127.0.0.1:9002/", "actor name after '/' is empty"),
        ("udp://127.0.0.1:9002/a%20b", "'%'"),
        ("udp://127.0.0.1:9002/a b", "whitespace"),
        (" udp://127.0.0.1:9002", "whitespace"),
        ("udp://127.0.0.1:9002/a\x00", "control characters"),
        ("", "scheme is missing"),
    ],
)
def test_parsing_refuses_malformed_urls_saying_why(url: str, reason: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_address(url)
    message = str(caught.value)
    assert reason in message
    assert repr(url) in message
    assert "SCHEME://HOST:PORT/ACTOR" in message


def test_an_actor_name_longer_than_255_utf8_bytes_is_refused() -> None:
    name = "é" * 128  # 256 bytes, 128 characters
    with pytest.raises(InvalidAddress, match="256 bytes of UTF-8; at most 255"):
        parse_address(f"udp://h:1/{name}")


def test_an_actor_can_be_required() -> None:
    with pytest.raises(InvalidAddress, match=r"actor name is missing \(add /ACTOR\)"):
        parse_address("udp://127.0.0.1:9002", require_actor=True)
    assert parse_address("udp://h:1/a", require_actor=True).actor == "a"


def test_an_actor_can_be_forbidden_and_the_message_shows_the_node_form() -> None:
    with pytest.raises(InvalidAddress, match="takes no actor name") as caught:
        parse_address("udp://127.0.0.1:9002/greeter", forbid_actor=True)
    assert "expected SCHEME://HOST:PORT," in str(caught.value)
    assert parse_address("udp://h:1", forbid_actor=True).actor == ""


def test_a_huge_input_is_quoted_only_in_part() -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_address("x" * 100_000)
    assert len(str(caught.value)) < 1000
    assert "100000 characters" in str(caught.value)


def test_a_non_string_is_refused_with_our_error() -> None:
    with pytest.raises(InvalidAddress, match="must be a string"):
        parse_address(9002)  # type: ignore[arg-type]


def test_invalid_address_is_also_a_config_error_and_a_value_error() -> None:
    with pytest.raises(ConfigError):
        parse_address("nope")
    with pytest.raises(ValueError, match="nope"):
        parse_address("nope")


# --- building and printing ---------------------------------------------------------------------


def test_printing_brackets_ipv6_and_appends_the_actor() -> None:
    address = Address("udp", "::1", 9002, "greeter")
    assert address.node_url() == "udp://[::1]:9002"
    assert str(address) == "udp://[::1]:9002/greeter"
    assert str(Address("tcp", "example.internal", 7000)) == "tcp://example.internal:7000"


def test_format_host_port_brackets_only_ipv6() -> None:
    assert format_host_port("127.0.0.1", 1) == "127.0.0.1:1"
    assert format_host_port("::1", 1) == "[::1]:1"
    assert format_host_port("localhost", 1) == "localhost:1"


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (("UDP", "h", 1, ""), "scheme 'UDP'"),
        (("udp", "[::1]", 1, ""), "without brackets"),
        (("udp", "h", 70000, ""), "port 70000"),
        (("udp", "h", True, ""), "port True"),
        (("udp", "h", 1, "a/b"), "'/'"),
        (("udp", "", 1, ""), "host is empty"),
    ],
)
def test_building_an_address_checks_every_part(
    parts: tuple[str, str, int, str], reason: str
) -> None:
    with pytest.raises(InvalidAddress, match=reason):
        Address(*parts)


def test_addresses_are_immutable_and_hashable() -> None:
    address = parse_address("udp://h:1/a")
    with pytest.raises(AttributeError):
        address.port = 2  # type: ignore[misc]
    assert {address: 1}[Address("udp", "h", 1, "a")] == 1


# --- properties --------------------------------------------------------------------------------

schemes = st.from_regex(r"[a-z][a-z0-9+.-]{0,10}", fullmatch=True)
labels = st.from_regex(r"[a-z_]([a-z0-9_-]{0,8}[a-z0-9_])?", fullmatch=True)
names = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(lambda ip: ipaddress.IPv6Address(ip).compressed)
actor_chars = st.characters(
    blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"),
    blacklist_characters="/?#%\x85\xa0\u1680",
)
actors = st.text(actor_chars, max_size=40).filter(lambda a: a == "" or a.isprintable())
addresses = st.builds(Address, schemes, st.one_of(ipv4, ipv6, names),
                      st.integers(0, 65535), actors)


@given(addresses)
def test_printing_then_parsing_gives_the_same_address(address: Address) -> None:
    assert parse_address(str(address)) == address


@given(st.text(max_size=80))
def test_parsing_any_text_either_succeeds_or_raises_invalid_address(text: str) -> None:
    try:
        address = parse_address(text)
    except InvalidAddress:
        return
    assert parse_address(str(address)) == address


@given(st.from_regex(r"[a-z]{1,4}://[^/]{0,12}(/[^/]{0,6})?", fullmatch=True))
def test_url_shaped_text_either_parses_or_raises_invalid_address(text: str) -> None:
    try:
        address = parse_address(text)
    except InvalidAddress:
        return
    assert parse_address(str(address)) == address
