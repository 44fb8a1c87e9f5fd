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
from relay_core import Codec, ConfigError, Node, NodeConfig, hookimpl
from relay_core.plugins.registry import PluginRegistry

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
                 r"^.*node\.toml: \[codecs\.msgpack\] foo: unknown option; allowed: types",
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
    assert message.startswith("[codecs.cbor] colour: unknown option; allowed: types"), message


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
