"""A bad plugin option stops a node before it starts, never at its first message.

Every plugin a config names (codecs, compressors, the transports it listens on)
is made when the node is, through the registry's one ``create``; a ConfigError
names the file, the table and the key, and says what is allowed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from nodes import WAIT_LIMIT
from relay_core import (
    Codec,
    ConfigError,
    Node,
    NodeConfig,
    PluginError,
    PluginOption,
    hookimpl,
)
from relay_core.plugins.registry import PluginRegistry
from relay_core.tools.plugin_options import options_markdown

CLI = [sys.executable, "-m", "relay_core.tools.cli"]

LISTEN = '[listen.udp]\nhost = "127.0.0.1"\nport = 0\n'


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(f'[node]\nname = "alpha"\ncompressor = "zstd"\n\n{LISTEN}\n{text}')
    return path


async def start_error(config: NodeConfig, registry: PluginRegistry | None = None) -> str:
    """The ConfigError a node with this config stops with, made and started as a user would."""
    with pytest.raises(ConfigError) as caught:
        async with Node(config, registry=registry):
            pass
    return str(caught.value)


BAD_OPTIONS = [
    pytest.param("[compressors.zstd]\nlevle = 3\n",
                 r"^.*node\.toml: \[compressors\.zstd\] levle: unknown option; "
                 r"allowed: level, .*dictionary", id="misspelt-key"),
    pytest.param("[compressors.zstd]\nlevel = 99\n",
                 r"^.*node\.toml: \[compressors\.zstd\] level = 99 is not allowed: "
                 r"an integer from -\d+ to 22$", id="out-of-range"),
    pytest.param('[compressors.zstd]\ndictionary = "missing.dict"\n',
                 r"^.*node\.toml: \[compressors\.zstd\] dictionary = '.*missing\.dict': "
                 r"cannot read it \(No such file or directory\)", id="missing-file"),
    pytest.param("[codecs.msgpack]\nfoo = 1\n",
                 r"^.*node\.toml: \[codecs\.msgpack\] foo: unknown option; allowed: none",
                 id="unknown-codec-option"),
]


@pytest.mark.parametrize(("table", "expected"), BAD_OPTIONS)
async def test_a_bad_option_in_a_file_stops_the_node_naming_file_table_and_key(
        tmp_path: Path, table: str, expected: str) -> None:
    message = await start_error(NodeConfig.from_file(config_file(tmp_path, table)))
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "node.toml")), message
    assert re.match(expected, message), message


async def test_a_bad_option_of_a_plugin_the_config_only_configures_stops_the_node() -> None:
    # cbor is named by no peer and not the default: its table alone makes it checked.
    config = NodeConfig(codec_options={"cbor": {"colour": "red"}})
    message = await start_error(config)
    assert message.startswith("[codecs.cbor] colour: unknown option; allowed: none"), message


async def test_a_bad_option_in_code_names_the_table_without_a_file() -> None:
    config = NodeConfig(compressor="zstd", compressor_options={"zstd": {"level": 99}})
    message = await start_error(config)
    assert message.startswith("[compressors.zstd] level = 99 is not allowed"), message


async def test_a_bad_listener_option_names_the_file_too(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[listen.udp]\nhost = "127.0.0.1"\nport = 0\nmax_datagram_size = 1\n')
    message = await start_error(NodeConfig.from_file(path))
    assert message.startswith(f"{path}: [listen.udp] max_datagram_size = 1 is not allowed"), \
        message


class PickyCodec(Codec):
    """A third-party codec whose constructor checks its option's value itself."""

    name: ClassVar[str] = "picky"

    def __init__(self, *, width: int = 8) -> None:
        if width not in (8, 16):
            raise ConfigError(f"width = {width!r} is not allowed: 8 or 16")

    def encode(self, obj: object) -> bytes:
        return repr(obj).encode()

    def decode(self, data: bytes) -> object:
        return data.decode()


class PickyPlugin:
    @staticmethod
    @hookimpl
    def net_relay_codecs() -> list[type[Codec]]:
        return [PickyCodec]


async def test_a_third_party_plugin_goes_through_the_same_check(tmp_path: Path) -> None:
    registry = PluginRegistry.load(plugins=[PickyPlugin()])
    path = config_file(tmp_path, "[codecs.picky]\nwidth = 12\n")
    message = await start_error(NodeConfig.from_file(path), registry)
    assert message == f"{path}: [codecs.picky] width = 12 is not allowed: 8 or 16"


async def test_a_good_option_is_used_by_the_node_that_checked_it(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[compressors.zstd]\nlevel = 5\n")
    async with Node(NodeConfig.from_file(path)) as node:
        assert node.address("udp").startswith("udp://127.0.0.1:")


def test_the_node_command_refuses_a_bad_option_in_one_line(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[compressors.zstd]\nlevle = 3\n")
    try:
        result = subprocess.run([*CLI, "node", "--config", str(path)], capture_output=True,
                                text=True, timeout=WAIT_LIMIT, check=False)
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"the node started instead of refusing its config: {expired.stdout!r}")
    assert result.returncode == 1
    assert "listening" not in result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert f"{path}: [compressors.zstd] levle: unknown option" in result.stderr


# --- options declared once, as PluginOption values ------------------------------------


class DeclaringCodec(Codec):
    """A third-party codec that declares its options; its constructor takes any keyword."""

    name: ClassVar[str] = "declaring"
    options = (
        PluginOption("colour", "string", "red", "What colour the bytes are.",
                     choices=("red", "blue")),
        PluginOption("width", "integer", 8, "Bits per thing."),
        PluginOption("ratio", "number", 1.0, "A float; an integer is fine too."),
        PluginOption("schema", "path", None, "A file.", required=True),
    )

    def __init__(self, **options: object) -> None:
        self.given = options

    def encode(self, obj: object) -> bytes:
        return repr(obj).encode()

    def decode(self, data: bytes) -> object:
        return data.decode()


class DeclaringPlugin:
    @staticmethod
    @hookimpl
    def net_relay_codecs() -> list[type[Codec]]:
        return [DeclaringCodec]


DECLARED_PROBLEMS = [
    pytest.param('schema = "s"\nwidth = "8"\n', r'\[codecs\.declaring\] width = \'8\': '
                 r"must be an integer$", id="wrong-type"),
    pytest.param('schema = "s"\nwidth = true\n', r"width = True: must be an integer$",
                 id="bool-is-not-an-integer"),
    pytest.param('schema = "s"\ncolour = "green"\n',
                 r"colour = 'green': must be one of 'red', 'blue'$", id="not-a-choice"),
    pytest.param('schema = "s"\ncolur = "red"\n',
                 r"colur: unknown option; allowed: colour, width, ratio, schema \(codec "
                 r"'declaring' from .*\); did you mean 'colour'\?$", id="typo"),
    pytest.param("width = 8\n", r"\[codecs\.declaring\] schema: required by codec 'declaring'",
                 id="missing-required"),
]


@pytest.mark.parametrize(("table", "expected"), DECLARED_PROBLEMS)
async def test_declared_options_are_checked_at_start_by_name_type_and_presence(
        tmp_path: Path, table: str, expected: str) -> None:
    registry = PluginRegistry.load(plugins=[DeclaringPlugin()])
    path = config_file(tmp_path, f"[codecs.declaring]\n{table}")
    message = await start_error(NodeConfig.from_file(path), registry)
    assert message.startswith(f"{path}: [codecs.declaring] "), message
    assert re.search(expected, message), message


async def test_declared_options_of_the_right_types_reach_the_constructor(tmp_path: Path) -> None:
    registry = PluginRegistry.load(plugins=[DeclaringPlugin()])
    path = config_file(tmp_path, '[codecs.declaring]\nschema = "s.json"\nratio = 2\nwidth = 16\n')
    async with Node(NodeConfig.from_file(path), registry=registry) as node:
        codec = node.registry.codec("declaring", schema="s.json", ratio=2, width=16)
        assert isinstance(codec, DeclaringCodec)
        assert codec.given == {"schema": "s.json", "ratio": 2, "width": 16}


async def test_a_misspelt_builtin_option_gets_a_did_you_mean(tmp_path: Path) -> None:
    message = await start_error(NodeConfig.from_file(
        config_file(tmp_path, "[compressors.zstd]\nlevle = 3\n")))
    assert message.endswith("did you mean 'level'?"), message


async def test_a_builtin_option_of_the_wrong_type_is_refused_before_the_constructor_sees_it(
        tmp_path: Path) -> None:
    message = await start_error(NodeConfig.from_file(
        config_file(tmp_path, "[compressors.zstd]\ndictionaries = 3\n")))
    assert message == (f"{tmp_path / 'node.toml'}: [compressors.zstd] dictionaries = 3: "
                       "must be a file path or an array of them")


async def test_a_udp_peer_with_an_unknown_key_is_not_told_a_wrong_list_of_keys(
        tmp_path: Path) -> None:
    path = config_file(tmp_path, '[peers.beta]\naddress = "udp://127.0.0.1:9"\ncolour = 1\n')
    message = await start_error(NodeConfig.from_file(path))
    assert "[peers.beta] colour: unknown option; allowed: none (udp peers" in message, message
    assert "take only address, codec and compressor" not in message


def test_a_class_whose_options_are_not_plugin_options_is_refused() -> None:
    class Loose(DeclaringCodec):
        name: ClassVar[str] = "loose"
        options = ("colour",)  # type: ignore[assignment]

    class LoosePlugin:
        @staticmethod
        @hookimpl
        def net_relay_codecs() -> list[type[Codec]]:
            return [Loose]

    with pytest.raises(PluginError, match=r"Loose\.options is \('colour',\); it must be a tuple "
                                          r"of relay_core\.PluginOption"):
        PluginRegistry.load(entry_points=False, plugins=[LoosePlugin()])


def test_every_builtin_plugin_declares_its_options() -> None:
    registry = PluginRegistry.load()
    undeclared = [(p.kind, p.name) for p in registry.plugins() if p.distribution == "net-relay"
                  and registry.plugin_class(p.kind, p.name).options is None]
    assert undeclared == []


def test_the_plugins_command_lists_declared_options_per_table() -> None:
    result = subprocess.run([*CLI, "plugins", "--options"], capture_output=True, text=True,
                            timeout=WAIT_LIMIT, check=True)
    rows = [line.split() for line in result.stdout.splitlines()]
    assert ["compressor", "zstd", "[compressors.zstd]", "level", "integer", "3"] in [
        row[:6] for row in rows]
    assert ["transport", "tcp", "[peers.NAME]", "(tcp://)", "tls", "boolean", "false"] in [
        row[:7] for row in rows]
    assert ["codec", "msgpack", "[codecs.msgpack]", "-", "takes", "no", "options"] in rows


def test_docs_config_lists_exactly_the_options_the_builtin_plugins_declare() -> None:
    registry = PluginRegistry.load()
    builtins = [p for p in registry.plugins() if p.distribution == "net-relay"]
    expected = options_markdown(registry, builtins)
    text = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    begin, end = "<!-- plugin options: begin -->\n", "<!-- plugin options: end -->"
    assert begin in text and end in text
    documented = text.split(begin, 1)[1].split(end, 1)[0].strip()
    assert documented == expected.strip(), (
        "docs/config.md's plugin options differ from the declarations; paste the output of"
        " `net-relay plugins --markdown` (built-in rows) between the markers")


async def test_a_config_error_a_transport_raises_when_it_listens_names_the_file(
        tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('[listen.quic]\nhost = "127.0.0.1"\nport = 0\n')
    message = await start_error(NodeConfig.from_file(path))
    assert message.startswith(f"{path}: [listen.quic] certificate and private_key are "
                              "required to listen"), message
