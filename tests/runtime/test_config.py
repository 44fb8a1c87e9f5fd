"""The node configuration: what a TOML file may say, what it means, how mistakes are reported."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core.config.address import Address
from relay_core.config.node_config import ListenConfig, NodeConfig, PeerConfig
from relay_core.errors import ConfigError, InvalidAddress

FULL = """\
[node]
name = "alpha"
codec = "msgpack"
compressor = "zstd"
max_message_size = 1048576
mailbox_size = 64
duplicate_window = 128
max_senders = 16

[listen.udp]
host = "127.0.0.1"
port = 9001
max_datagram_size = 1400

[listen.tcp]
host = "::1"
port = 0

[peers.beta]
address = "udp://127.0.0.1:9002"
codec = "cbor"
compressor = "none"

[peers.gamma]
address = "tcp://[::1]:7000"
psk = "secret"

[codecs.msgpack]

[compressors.zstd]
level = 3
min_size = 64
dictionaries = ["a.dict", "b.dict"]
"""

FULL_IN_CODE = NodeConfig(
    name="alpha",
    codec="msgpack",
    compressor="zstd",
    max_message_size=1048576,
    mailbox_size=64,
    duplicate_window=128,
    max_senders=16,
    listen={
        "udp": ListenConfig("127.0.0.1", 9001, {"max_datagram_size": 1400}),
        "tcp": ListenConfig("::1", 0),
    },
    peers={
        "beta": PeerConfig("udp://127.0.0.1:9002", codec="cbor", compressor="none"),
        "gamma": PeerConfig("tcp://[::1]:7000", options={"psk": "secret"}),
    },
    codec_options={"msgpack": {}},
    compressor_options={"zstd": {"level": 3, "min_size": 64,
                                 "dictionaries": ["a.dict", "b.dict"]}},
)


def refused(text: str, kind: type[ConfigError] = ConfigError) -> str:
    """The message of the error loading ``text`` as node.toml raises."""
    with pytest.raises(kind) as caught:
        NodeConfig.from_toml(text, source="node.toml")
    return str(caught.value)


# --- what a file means -------------------------------------------------------------------------


def test_a_file_builds_exactly_what_the_same_config_in_code_builds(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(FULL, encoding="utf-8")
    in_code = dataclasses.replace(FULL_IN_CODE, directory=str(tmp_path))  # relative paths' base
    assert NodeConfig.from_file(path) == in_code
    assert NodeConfig.from_file(str(path)) == in_code


def test_an_empty_file_gives_the_defaults() -> None:
    config = NodeConfig.from_toml("")
    assert config == NodeConfig()
    assert (config.name, config.codec, config.compressor) == ("node", "msgpack", "none")
    assert (config.max_message_size, config.mailbox_size) == (16 * 1024 * 1024, 1024)
    assert (config.duplicate_window, config.max_senders) == (4096, 4096)
    assert (config.max_active_requests, config.max_request_deadline) == (4096, 300.0)
    assert (config.mailbox_bytes, config.max_buffered_bytes) == (16 * 1024 * 1024,
                                                                 64 * 1024 * 1024)
    assert config.max_decompression_rate == 128 * 1024 * 1024
    assert dict(config.listen) == {"udp": ListenConfig("127.0.0.1", 0)}
    assert (dict(config.peers), dict(config.codec_options)) == ({}, {})


def test_an_empty_listen_table_means_no_listeners() -> None:
    assert dict(NodeConfig.from_toml("[listen]").listen) == {}


def test_extra_listen_and_peer_keys_are_kept_as_transport_options() -> None:
    config = NodeConfig.from_toml(FULL)
    assert dict(config.listen["udp"].options) == {"max_datagram_size": 1400}
    assert dict(config.peers["gamma"].options) == {"psk": "secret"}


def test_a_peer_uses_its_own_codec_and_compressor_or_else_the_node_defaults() -> None:
    config = NodeConfig.from_toml(FULL)
    assert (config.peer_codec("beta"), config.peer_compressor("beta")) == ("cbor", "none")
    assert (config.peer_codec("gamma"), config.peer_compressor("gamma")) == ("msgpack", "zstd")


def test_asking_for_an_unknown_peer_names_the_configured_ones() -> None:
    with pytest.raises(ConfigError, match="no peer named 'delta'.*peers: beta, gamma"):
        NodeConfig.from_toml(FULL).peer_codec("delta")


def test_a_peer_address_is_parsed_and_normalised() -> None:
    peer = PeerConfig("TCP://[0::1]:7000")
    assert peer.address == "TCP://[0::1]:7000"
    assert peer.parsed == Address("tcp", "::1", 7000)


def test_a_config_round_trips_through_a_plain_dict() -> None:
    data = FULL_IN_CODE.to_dict()
    assert NodeConfig.from_dict(data) == FULL_IN_CODE
    assert data["peers"] == {
        "beta": {"address": "udp://127.0.0.1:9002", "codec": "cbor", "compressor": "none"},
        "gamma": {"address": "tcp://[::1]:7000", "psk": "secret"},
    }
    assert isinstance(data["compressors"], dict)
    assert data["compressors"]["zstd"]["dictionaries"] == ["a.dict", "b.dict"]


def test_a_byte_order_mark_at_the_start_of_a_file_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_bytes(b"\xef\xbb\xbf[node]\nname = \"bom\"\n")
    assert NodeConfig.from_file(path).name == "bom"


# --- immutability ------------------------------------------------------------------------------


def test_a_config_cannot_be_changed_after_it_is_built() -> None:
    config = NodeConfig.from_toml(FULL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"  # type: ignore[misc]
    for mapping in (config.listen, config.peers, config.codec_options,
                    config.compressor_options, config.compressor_options["zstd"],
                    config.listen["udp"].options, config.peers["gamma"].options):
        assert isinstance(mapping, MappingProxyType)
    assert config.compressor_options["zstd"]["dictionaries"] == ("a.dict", "b.dict")


def test_changing_the_dicts_a_config_was_built_from_does_not_change_it() -> None:
    options: dict[str, object] = {"level": 3, "nested": {"a": [1]}}
    listen = {"udp": ListenConfig()}
    config = NodeConfig(listen=listen, compressor_options={"zstd": options})
    options["level"] = 9
    options["nested"]["a"].append(2)  # type: ignore[index]
    listen["tcp"] = ListenConfig()
    assert config.compressor_options["zstd"]["level"] == 3
    assert config.compressor_options["zstd"]["nested"] == {"a": (1,)}
    assert list(config.listen) == ["udp"]


def test_instances_never_share_default_mappings() -> None:
    first, second = NodeConfig(), NodeConfig()
    assert first.listen is not second.listen
    assert first.listen == second.listen
    assert ListenConfig().options is not ListenConfig().options


def test_configs_are_hashable_and_equal_configs_hash_alike() -> None:
    assert hash(NodeConfig.from_toml(FULL)) == hash(FULL_IN_CODE)
    assert hash(PeerConfig("udp://h:1")) == hash(PeerConfig("udp://h:1"))


# --- bad values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[node]\nmailbox_size = -1",
         "node.toml: [node] mailbox_size = -1: must be an integer >= 1"),
        ("[node]\nmailbox_size = true",
         "mailbox_size = true: must be an integer >= 1, not a boolean"),
        ("[node]\nmailbox_size = 1.5", "mailbox_size = 1.5: must be an integer >= 1, not a float"),
        ("[node]\nmailbox_size = '8'", "mailbox_size = '8': must be an integer >= 1, not a string"),
        ("[node]\nmax_message_size = 0",
         "max_message_size = 0: must be an integer in 1..4294967295"),
        ("[node]\nduplicate_window = 63",
         "duplicate_window = 63: must be an integer in 64..1048576"),
        ("[node]\nmax_senders = 0", "max_senders = 0: must be an integer >= 1"),
        ("[node]\nmax_active_requests = 0",
         "max_active_requests = 0: must be an integer in 1..1048576"),
        ("[node]\nmailbox_bytes = 0", "mailbox_bytes = 0: must be an integer >= 1"),
        ("[node]\nmailbox_bytes = 1.5",
         "mailbox_bytes = 1.5: must be an integer >= 1, not a float"),
        ("[node]\nmax_buffered_bytes = 0", "max_buffered_bytes = 0: must be an integer >= 1"),
        ("[node]\nmax_decompression_rate = 1000",
         "max_decompression_rate = 1000: must be an integer >= 1048576"),
        ("[node]\nmax_buffered_bytes = '64M'",
         "max_buffered_bytes = '64M': must be an integer >= 1, not a string"),
        ("[node]\nmax_request_deadline = 0",
         "max_request_deadline = 0: must be a number of seconds, more than 0 and at most 4294967"),
        ("[node]\nmax_request_deadline = 5e6", "max_request_deadline = 5000000.0: must be"),
        ("[node]\nmax_request_deadline = nan", "max_request_deadline = nan: must be"),
        ("[node]\nmax_request_deadline = '30'",
         "max_request_deadline = '30': must be a number of seconds, more than 0 and at most"),
        ("[node]\nname = 'has space'", "name = 'has space': must be a name of 1..255"),
        ("[node]\nname = ''", "name = '': must be a name"),
        ("[node]\ncodec = 7", "codec = 7: must be a plugin name"),
        ("[node]\ncompressor = 'Zstd'", "compressor = 'Zstd': must be a plugin name"),
        ("[listen.udp]\nport = 65536", "[listen.udp] port = 65536: must be an integer in 0..65535"),
        ("[listen.udp]\nhost = '[::1]'",
         "[listen.udp] host = '[::1]': write the IPv6 host without"),
        ("[listen.udp]\nhost = ''", "[listen.udp] host = '': the host is empty"),
        ("[listen.udp]\nhost = 'bad host'", "[listen.udp] host = 'bad host': the host name"),
        ("[listen.udp]\nhost = 1", "[listen.udp] host = 1: must be a string, not an integer"),
        ("[listen.Udp]", "[listen.Udp]: the scheme 'Udp' is not"),
        ("listen = 3", "node.toml: [listen] must be a table, not an integer 3"),
        ("[listen]\nudp = 3", "node.toml: [listen.udp] must be a table, not an integer 3"),
        ("[peers.beta]\ncodec = 'cbor'", "[peers.beta] has no address"),
        ("[peers.beta]\naddress = 5", "[peers.beta] address = 5: must be a node URL string"),
        ("[peers.beta]\naddress = 'udp://h:1'\ncodec = ''", "[peers.beta] codec = '': must be"),
        ("[peers.'has space']\naddress = 'udp://h:1'", '[peers."has space"] is not a valid peer'),
        ("[peers.beta]\naddress = 'udp://h:1'\ncodecs = 'x'",
         "unknown key 'codecs'; did you mean 'codec'?"),
        ("[listen.udp]\nprot = 1", "[listen.udp] unknown key 'prot'; did you mean 'port'?"),
        ("[codecs.Msgpack]", "[codecs.Msgpack] is not a valid table name"),
        ("[compressors]\nzstd = 3", "[compressors.zstd] must be a table, not an integer 3"),
    ],
)
def test_bad_values_are_refused_with_file_key_value_and_what_is_allowed(
    toml: str, expected: str
) -> None:
    assert expected in refused(toml)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("udp://127.0.0.1:9002/greeter", "takes no actor name"),
        ("udp://::1:9002", "brackets"),
        ("127.0.0.1:9002", "scheme is missing"),
        ("udp://127.0.0.1:0", "a peer needs its real port"),
    ],
)
def test_a_bad_peer_address_is_an_invalid_address(address: str, expected: str) -> None:
    message = refused(f"[peers.beta]\naddress = '{address}'", InvalidAddress)
    assert message.startswith("node.toml: [peers.beta] address")
    assert expected in message


def test_an_unknown_table_lists_the_tables_and_suggests_the_closest() -> None:
    message = refused("[peer.beta]\naddress = 'udp://h:1'")
    assert message == ("node.toml: unknown table [peer]; allowed tables: [node], [listen], "
                       "[peers], [codecs], [compressors]; did you mean [peers]?")


def test_an_unknown_node_key_lists_the_keys_and_suggests_the_closest() -> None:
    message = refused("[node]\nmailbox = 8")
    assert message.startswith("node.toml: [node] unknown key 'mailbox'; allowed keys: 'name',")
    assert message.endswith("did you mean 'mailbox_size'?")


def test_an_option_that_is_not_a_toml_value_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[codecs.json\] x = \{1\}: must be a TOML value"):
        NodeConfig.from_dict({"codecs": {"json": {"x": {1}}}}, source="<dict>")


def test_options_may_hold_every_toml_type() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, tzinfo=datetime.UTC)
    config = NodeConfig.from_toml(
        "[codecs.json]\na = 1\nb = 1.5\nc = true\nd = 'x'\ne = 2024-01-02T03:04:00Z\n"
        "f = [1, [2]]\ng = {h = 1}\ni = 2024-01-02\nj = 03:04:05\n"
    )
    options = config.codec_options["json"]
    assert (options["a"], options["c"], options["e"], options["f"]) == (1, True, when, (1, (2,)))
    assert options["g"] == {"h": 1}


def test_options_nested_absurdly_deep_are_refused() -> None:
    value: list[object] = []
    for _ in range(200):
        value = [value]
    with pytest.raises(ConfigError, match="nested more than 100 levels"):
        NodeConfig(codec_options={"json": {"x": value}})


# --- building in code ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: NodeConfig(mailbox_size=0), "NodeConfig: [node] mailbox_size = 0: must be"),
        (lambda: NodeConfig(max_senders=True), "max_senders = true: must be an integer"),
        (lambda: NodeConfig(listen={"udp": {"port": 1}}),  # type: ignore[dict-item]
         "listen['udp'] must be a ListenConfig"),
        (lambda: NodeConfig(listen={"UDP": ListenConfig()}), "listen['UDP']: the scheme"),
        (lambda: NodeConfig(peers={"a b": PeerConfig("udp://h:1")}), "peers['a b']: a peer name"),
        (lambda: NodeConfig(peers=[]), "peers must be a table"),  # type: ignore[arg-type]
        (lambda: NodeConfig(codec_options={"JSON": {}}), "codec_options key = 'JSON'"),
        (lambda: ListenConfig(port=-1), "ListenConfig: port = -1: must be an integer in 0..65535"),
        (lambda: ListenConfig(options={"port": 1}), "options may not contain 'port'"),
        (lambda: ListenConfig(options={1: 1}),  # type: ignore[dict-item]
         "options has the key 1; keys must be strings"),
        (lambda: PeerConfig("udp://h:1", codec="X"), "PeerConfig: codec = 'X': must be"),
        (lambda: PeerConfig("udp://h:1", options={"adress": "x"}), "did you mean 'address'?"),
    ],
)
def test_building_in_code_runs_the_same_checks(build: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build()  # type: ignore[operator]
    assert expected in str(caught.value)


def test_a_bad_peer_address_in_code_is_an_invalid_address() -> None:
    with pytest.raises(InvalidAddress, match="PeerConfig: address: invalid address 'udp://h'"):
        PeerConfig("udp://h")


# --- reading files ------------------------------------------------------------------------------


def test_invalid_toml_is_reported_with_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text("[node]\nname = 'alpha'\nmailbox_size = = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"node\.toml: invalid TOML: .*line 3"):
        NodeConfig.from_file(path)


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="absent.toml: cannot read the config file"):
        NodeConfig.from_file(path)


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        NodeConfig.from_file(tmp_path)


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[node]\nname = \"caf\xe9\"\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        NodeConfig.from_file(path)


def test_values_nested_too_deeply_for_the_toml_parser_are_a_config_error() -> None:
    assert "nested too deeply" in refused("x = " + "[" * 5000)


# --- plugins ------------------------------------------------------------------------------------

INSTALLED = {"codecs": ["cbor", "json", "msgpack"], "compressors": ["none", "zstd"],
             "transports": ["tcp", "udp"]}


def test_a_config_naming_only_installed_plugins_validates() -> None:
    NodeConfig.from_toml(FULL).validate_plugins(**INSTALLED)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[node]\ncodec = 'yaml'",
         "node.codec: no codec 'yaml' is installed (installed codecs: cbor, json, msgpack)"),
        ("[node]\ncompressor = 'lz4'", "node.compressor: no compressor 'lz4' is installed"),
        ("[listen.quic]", ("listen.quic: no transport for the scheme 'quic' is installed "
                           "(installed transports: tcp, udp)")),
        ("[peers.beta]\naddress = 'quic://h:1'",
         "peers.beta.address: no transport for the scheme 'quic'"),
        ("[peers.beta]\naddress = 'udp://h:1'\ncodec = 'msgpak'",
         ("peers.beta.codec: no codec 'msgpak' is installed (installed codecs: cbor, json, "
          "msgpack); did you mean 'msgpack'?")),
        ("[peers.beta]\naddress = 'udp://h:1'\ncompressor = 'zlib'", "peers.beta.compressor"),
        ("[codecs.yaml]", "codecs.yaml: no codec 'yaml'"),
        ("[compressors.zlib]\nlevel = 1", "compressors.zlib: no compressor 'zlib'"),
    ],
)
def test_a_plugin_that_is_not_installed_is_named_with_its_key(toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        NodeConfig.from_toml(toml).validate_plugins(**INSTALLED)
    assert expected in str(caught.value)


def test_every_missing_plugin_is_reported_at_once() -> None:
    config = NodeConfig(codec="yaml", compressor="lz4")
    with pytest.raises(ConfigError, match="node.codec.*; node.compressor"):
        config.validate_plugins(**INSTALLED)


# --- robustness ---------------------------------------------------------------------------------

toml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                         st.dates(), st.binary(max_size=4))
keys = st.one_of(st.sampled_from(["node", "listen", "peers", "codecs", "compressors", "udp",
                                  "beta", "host", "port", "address", "codec", "compressor",
                                  "name", "mailbox_size", "max_message_size", "level"]),
                 st.text(max_size=8), st.integers())
nested = st.recursive(toml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


@given(st.dictionaries(keys, nested, max_size=5))
def test_any_nested_dict_gives_a_config_or_a_config_error(data: dict[object, object]) -> None:
    try:
        config = NodeConfig.from_dict(data)  # type: ignore[arg-type]
    except ConfigError:
        return
    assert NodeConfig.from_dict(config.to_dict()) == config


@given(st.one_of(toml_scalars, st.lists(toml_scalars)))
def test_a_config_that_is_not_a_mapping_is_a_config_error(data: object) -> None:
    with pytest.raises(ConfigError, match="the configuration must be a table"):
        NodeConfig.from_dict(data)  # type: ignore[arg-type]


toml_lines = st.one_of(
    st.sampled_from(["[node]", "[listen.udp]", "[peers.beta]", "[codecs.json]",
                     "[compressors.zstd]",
                     "port = 9001", "host = '::1'", "address = 'udp://h:1'", "name = 'a'",
                     "mailbox_size = 0", "codec = 'cbor'", "level = [1, {a = 2}]"]),
    st.text(max_size=30),
)


@given(st.one_of(st.text(), st.lists(toml_lines, max_size=8).map("\n".join)))
def test_any_text_gives_a_config_or_a_config_error(text: str) -> None:
    try:
        config = NodeConfig.from_toml(text)
    except ConfigError:
        return
    assert NodeConfig.from_dict(config.to_dict()) == config
