"""The built-in codecs' one option, ``types``: a MessageTypes registry given in Python.

A config file cannot express one, so a ``types`` key there stops the node when it
is made, with a ConfigError naming the table and the key, never at its first message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from relay_core import ConfigError, MessageTypes, Node, NodeConfig
from relay_core.plugins.registry import PluginRegistry

CODECS = pytest.mark.parametrize("codec", ["msgpack", "cbor", "json"])


@dataclass
class Point:
    x: int


@CODECS
def test_a_codec_made_with_its_own_types_encodes_those_types(codec: str) -> None:
    types = MessageTypes()
    types.register("test_codec_types.Point", Point)
    made = PluginRegistry.load().codec(codec, types=types)
    assert made.decode(made.encode(Point(3))) == Point(3)


@CODECS
def test_types_in_a_config_file_stops_the_node_with_a_config_error(
        codec: str, tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(f'[codecs.{codec}]\ntypes = "demo"\n')
    with pytest.raises(ConfigError) as caught:
        Node(NodeConfig.from_file(path))
    text = str(caught.value)
    assert text.startswith(f"{path}: [codecs.{codec}] types: unknown option; allowed: none")
