"""Relative file paths in a config file mean relative to that file, wherever the process runs.

A config built in code (``NodeConfig(...)``, ``from_dict``, ``from_toml``) has
no file, so its relative paths keep meaning the working directory.
"""

from __future__ import annotations

import random
import textwrap
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import msgpack
import pytest

from certs import Pki, make_pki
from nodes import RawUdp, collector, wait_for
from relay_codecs._zstd import train_dictionary
from relay_core import (
    Codec,
    ConfigError,
    HostPort,
    Node,
    NodeConfig,
    PluginRegistry,
    Transport,
)
from relay_core.config.paths import resolve_paths
from relay_core.hookspecs import hookimpl
from relay_core.tools.demo import echo

INSTALLED = set(PluginRegistry.load().transport_schemes())


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    """The directory holding the config files (and, by default, the PEM files)."""
    return tmp_path / "etc"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: never the config directory."""
    directory = tmp_path / "cwd"
    directory.mkdir()
    monkeypatch.chdir(directory)
    return directory


@pytest.fixture
def pki(conf: Path) -> Pki:
    return make_pki(conf)



# --- the resolving rule ---------------------------------------------------------------


def test_relative_paths_under_declared_keys_are_joined_to_the_directory() -> None:
    options = {"certificate": "tls/node.pem", "dictionaries": ("a.dict", "/abs/b.dict"),
               "label": "not/a/path.pem", "level": 3}
    resolved = resolve_paths(options, {"certificate", "dictionaries", "level"}, "/etc/relay")
    assert resolved == {"certificate": "/etc/relay/tls/node.pem",
                        "dictionaries": ("/etc/relay/a.dict", "/abs/b.dict"),
                        "label": "not/a/path.pem", "level": 3}


def test_absolute_and_empty_paths_are_left_alone() -> None:
    options = {"certificate": "/srv/node.pem", "ca": ""}
    assert resolve_paths(options, {"certificate", "ca"}, "/etc/relay") == options


def test_without_a_directory_nothing_changes() -> None:
    options = {"certificate": "node.pem"}
    assert resolve_paths(options, {"certificate"}, None) == options


# --- where the directory comes from ----------------------------------------------------


def test_a_config_file_records_its_absolute_directory(conf: Path, elsewhere: Path) -> None:
    conf.mkdir()
    write(conf, "node.toml", '[node]\nname = "alpha"\n')
    config = NodeConfig.from_file(Path("..") / "etc" / "node.toml")
    assert config.directory == str(conf)
    assert "directory" not in config.to_dict()["node"]  # type: ignore[operator]


def test_a_config_built_in_code_has_no_directory() -> None:
    assert NodeConfig().directory is None
    assert NodeConfig.from_toml('[node]\nname = "alpha"\n').directory is None


def test_a_directory_given_in_code_is_made_absolute(elsewhere: Path) -> None:
    assert NodeConfig(directory="certs").directory == str(elsewhere / "certs")


@pytest.mark.parametrize("bad", ["", 7, b"/etc"])
def test_a_directory_that_is_not_a_path_string_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="directory = .*: must be None or a directory path"):
        NodeConfig(directory=bad)  # type: ignore[arg-type]


# --- TLS files of the built-in transports ---------------------------------------------


TCP_SERVER = """\
    [node]
    name = "server"
    [listen.tcp]
    port = 0
    certificate = "server.pem"
    private_key = "server-key.pem"
    client_ca = "ca.pem"
    """


def tcp_client(port: int) -> str:
    return f"""\
    [node]
    name = "client"
    [listen.udp]
    [peers.server]
    address = "tcp://127.0.0.1:{port}"
    tls = true
    ca = "ca.pem"
    client_certificate = "client.pem"
    client_key = "client-key.pem"
    """


async def test_a_mutual_tls_tcp_pair_finds_every_pem_file_next_to_its_config(
        pki: Pki, conf: Path, elsewhere: Path) -> None:
    server_config = NodeConfig.from_file(write(conf, "server.toml", TCP_SERVER))
    async with Node(server_config) as server:
        server.spawn(echo, name="echo")
        port = int(server.address("tcp").rpartition(":")[2])
        client_config = NodeConfig.from_file(write(conf, "client.toml", tcp_client(port)))
        async with Node(client_config) as client:
            assert await client.ref("server/echo").rpc("over tls", timeout=10.0) == "over tls"


QUIC_SERVER = """\
    [node]
    name = "server"
    [listen.quic]
    port = 0
    certificate = "server.pem"
    private_key = "server-key.pem"
    """


@pytest.mark.skipif("quic" not in INSTALLED, reason="the quic transport is not installed")
async def test_a_quic_pair_finds_its_certificate_and_trust_anchor_next_to_its_config(
        pki: Pki, conf: Path, elsewhere: Path) -> None:
    server_config = NodeConfig.from_file(write(conf, "server.toml", QUIC_SERVER))
    async with Node(server_config) as server:
        server.spawn(echo, name="echo")
        client_toml = f"""\
            [listen.udp]
            [peers.server]
            address = "{server.address("quic")}"
            ca = "ca.pem"
            """
        async with Node(NodeConfig.from_file(write(conf, "client.toml", client_toml))) as client:
            assert await client.ref("server/echo").rpc("over quic", timeout=10.0) == "over quic"


def test_the_same_tables_built_in_code_read_relative_paths_from_the_working_directory(
        pki: Pki, conf: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tomllib.loads(textwrap.dedent(TCP_SERVER))
    with pytest.raises(ConfigError, match="certificate = 'server.pem': no readable file"):
        Node(NodeConfig.from_dict(data))
    monkeypatch.chdir(conf)
    Node(NodeConfig.from_dict(data))  # found from the config directory, as working directory


def test_absolute_paths_in_a_config_file_are_used_as_they_are(
        tmp_path: Path, conf: Path, elsewhere: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    conf.mkdir()
    path = write(conf, "node.toml", f"""\
        [listen.tcp]
        certificate = "{pki.server_cert}"
        private_key = "{pki.server_key}"
        """)
    Node(NodeConfig.from_file(path))


def test_a_missing_relative_file_is_named_by_its_resolved_path(
        pki: Pki, conf: Path, elsewhere: Path) -> None:
    path = write(conf, "node.toml", TCP_SERVER.replace('"server.pem"', '"missing.pem"'))
    resolved = str(conf / "missing.pem")
    with pytest.raises(ConfigError, match=f"certificate = '{resolved}': no readable file"):
        Node(NodeConfig.from_file(path))


def test_a_missing_relative_peer_file_is_named_by_its_resolved_path(
        pki: Pki, conf: Path, elsewhere: Path) -> None:
    path = write(conf, "node.toml", tcp_client(9).replace('"ca.pem"', '"nope/ca.pem"'))
    resolved = str(conf / "nope" / "ca.pem")
    with pytest.raises(ConfigError, match=f"ca = '{resolved}': no readable file"):
        Node(NodeConfig.from_file(path))


# --- zstd dictionaries ---------------------------------------------------------------


def order(rng: random.Random) -> bytes:
    return bytes(msgpack.packb({
        "type": "order.created", "order_id": f"ord-{rng.randrange(10**9):09d}",
        "amount_cents": rng.randrange(100, 10**5), "currency": "EUR"}))


async def test_zstd_dictionaries_named_relatively_are_found_next_to_the_config(
        conf: Path, elsewhere: Path) -> None:
    conf.mkdir()
    rng = random.Random(7)
    (conf / "orders.dict").write_bytes(train_dictionary([order(rng) for _ in range(800)], 1024))
    receiver_toml = """\
        [node]
        compressor = "zstd"
        [listen.udp]
        [compressors.zstd]
        dictionaries = ["orders.dict"]
        """
    received: list[object] = []
    async with Node(NodeConfig.from_file(write(conf, "receiver.toml", receiver_toml))) as receiver:
        receiver.spawn(collector(received), name="sink")
        sender_toml = f"""\
            [node]
            compressor = "zstd"
            [listen.udp]
            [peers.receiver]
            address = "{receiver.address("udp")}"
            [compressors.zstd]
            min_size = 0
            dictionary = "orders.dict"
            """
        async with Node(NodeConfig.from_file(write(conf, "sender.toml", sender_toml))) as sender:
            await sender.ref("receiver/sink").send({"order_id": "ord-000000001"})
            await wait_for(lambda: bool(received), "the compressed message")
    assert received == [{"order_id": "ord-000000001"}]


async def test_a_missing_relative_dictionary_is_named_by_its_resolved_path(
        conf: Path, elsewhere: Path) -> None:
    conf.mkdir()
    path = write(conf, "node.toml", """\
        [node]
        compressor = "zstd"
        [peers.other]
        address = "udp://127.0.0.1:9"
        [compressors.zstd]
        dictionary = "gone.dict"
        """)
    with pytest.raises(ConfigError, match=f"dictionary = '{conf / 'gone.dict'}': cannot read"):
        Node(NodeConfig.from_file(path))


# --- third-party plugins -------------------------------------------------------------


class RecordingTransport(Transport):
    """Records the options it is given; sends nothing."""

    scheme: ClassVar[str] = "vault"
    reliable: ClassVar[bool] = True
    path_options: ClassVar[frozenset[str]] = frozenset({"keyfile", "trust"})
    seen: ClassVar[list[Mapping[str, object]]] = []

    def __init__(self, events: Any, *, keyfile: str = "", trust: Sequence[str] = (),
                 label: str = "") -> None:
        super().__init__(events)
        self.max_packet_size = self.batch_size = 1200
        self.seen.append({"keyfile": keyfile, "trust": trust, "label": label})

    @classmethod
    def check_peer_options(cls, options: Mapping[str, object], where: str) -> None:
        cls.seen.append(dict(options))

    async def listen(self, host: str, port: int) -> HostPort:
        return host, port

    async def prepare(self, host: str, port: int,
                      options: Mapping[str, object] | None = None) -> HostPort:
        return host, port

    def send(self, destination: HostPort, packet: bytes) -> None:
        pass

    async def close(self) -> None:
        pass


class RecordingCodec(Codec):
    """msgpack, recording the options it is given."""

    name: ClassVar[str] = "schema-pack"
    path_options: ClassVar[frozenset[str]] = frozenset({"schema"})
    seen: ClassVar[list[Mapping[str, object]]] = []

    def __init__(self, *, schema: str, version: str = "") -> None:
        self.seen.append({"schema": schema, "version": version})

    def encode(self, obj: object) -> bytes:
        return bytes(msgpack.packb(obj))

    def decode(self, data: bytes) -> object:
        return msgpack.unpackb(data)


class RecordingPlugin:
    @staticmethod
    @hookimpl
    def net_relay_transports() -> list[type[Transport]]:
        return [RecordingTransport]

    @staticmethod
    @hookimpl
    def net_relay_codecs() -> list[type[Codec]]:
        return [RecordingCodec]


@pytest.fixture
def registry() -> PluginRegistry:
    RecordingTransport.seen.clear()
    RecordingCodec.seen.clear()
    return PluginRegistry.load(plugins=[RecordingPlugin])


def test_a_plugin_transport_gets_its_declared_path_options_resolved(
        registry: PluginRegistry, conf: Path, elsewhere: Path) -> None:
    conf.mkdir()
    path = write(conf, "node.toml", """\
        [listen.vault]
        keyfile = "keys/node.key"
        trust = ["a.pem", "/abs/b.pem"]
        label = "not/a/path"
        [peers.other]
        address = "vault://127.0.0.1:9"
        keyfile = "peer.key"
        label = "peer/label"
        """)
    Node(NodeConfig.from_file(path), registry=registry)
    assert RecordingTransport.seen == [
        {"keyfile": str(conf / "keys" / "node.key"),
         "trust": (str(conf / "a.pem"), "/abs/b.pem"), "label": "not/a/path"},
        {"keyfile": str(conf / "peer.key"), "label": "peer/label"},
    ]


async def test_a_plugin_codec_gets_its_declared_path_options_resolved(
        registry: PluginRegistry, conf: Path, elsewhere: Path) -> None:
    conf.mkdir()
    sink = RawUdp()
    try:
        path = write(conf, "node.toml", f"""\
            [node]
            codec = "schema-pack"
            [peers.sink]
            address = "{sink.url}"
            [codecs.schema-pack]
            schema = "orders.schema"
            version = "v1/orders"
            """)
        async with Node(NodeConfig.from_file(path), registry=registry) as node:
            await node.ref("sink/inbox").send("hello")
            await sink.receive()
    finally:
        sink.close()
    assert RecordingCodec.seen == [{"schema": str(conf / "orders.schema"), "version": "v1/orders"}]
