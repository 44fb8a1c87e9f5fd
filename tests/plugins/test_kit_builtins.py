"""The plugin kit (relay_core.testing) run against every built-in plugin and the memory transport.

Codecs and compressors each get a ``Test*`` class, exactly as a third-party
plugin would. Transports are parametrised over every ``transport`` that the
net-relay distribution registers, so tcp and quic join as soon as their entry
points exist. The kit also has to fail broken plugins; the last tests check that.
"""

from __future__ import annotations

import errno
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest

import relay_core.testing
from relay_core import (
    ActorContext,
    Codec,
    Compressor,
    ConfigError,
    HostPort,
    ListenConfig,
    Node,
    NodeConfig,
    PeerConfig,
    PluginConflict,
    PluginRegistry,
    Rpc,
    Transport,
    TransportError,
    TransportEvents,
)
from relay_core.testing import (
    CodecConformance,
    CompressorConformance,
    MemoryNetwork,
    MemoryTransport,
    PacketRecorder,
    TransportConformance,
    TransportSetup,
    memory_plugin,
)

REGISTRY = PluginRegistry.load()
BUILTIN_TRANSPORTS = sorted(
    info.name for info in REGISTRY.plugins()
    if info.kind == "transport" and info.distribution == "net-relay"
)
MEMORY_HOST = "memory-host"


# -- codecs ----------------------------------------------------------------------


class TestMsgpackConforms(CodecConformance):
    def make_codec(self) -> Codec:
        return REGISTRY.codec("msgpack")

    def deeply_nested_encoding(self, kind: str, levels: int) -> bytes | None:
        if kind != "messages":
            return super().deeply_nested_encoding(kind, levels)
        # A message is an ext whose data is length-prefixed, so it is built from the inside.
        payload = msgpack.packb(None)
        for _ in range(min(levels, 3000)):
            payload = msgpack.packb(["net_relay_kit.Nest", {"k": msgpack.ExtType(1, payload)}])
        return msgpack.packb(msgpack.ExtType(1, payload))  # type: ignore[no-any-return]


class TestCborConforms(CodecConformance):
    def make_codec(self) -> Codec:
        return REGISTRY.codec("cbor")


class TestJsonConforms(CodecConformance):
    def make_codec(self) -> Codec:
        return REGISTRY.codec("json")


# -- compressors ------------------------------------------------------------------


class TestZstdConforms(CompressorConformance):
    def make_compressor(self) -> Compressor:
        return REGISTRY.compressor("zstd")


class TestZstdWithoutMinimumSizeConforms(CompressorConformance):
    def make_compressor(self) -> Compressor:
        return REGISTRY.compressor("zstd", level=1, min_size=0)


class TestNoneConforms(CompressorConformance):
    def make_compressor(self) -> Compressor:
        return REGISTRY.compressor("none")


# -- transports --------------------------------------------------------------------


@pytest.fixture(scope="module")
def quic_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from relay_transports._certs import generate_self_signed

    directory = tmp_path_factory.mktemp("quic")
    made = generate_self_signed(directory / "cert.pem", directory / "key.pem")
    return made.certificate_path, made.key_path


class TestBuiltinTransportsConform(TransportConformance):
    """Every transport the net-relay distribution registers, with what each needs to run."""

    @pytest.fixture(autouse=True, params=BUILTIN_TRANSPORTS)
    def scheme(self, request: pytest.FixtureRequest) -> None:
        self.scheme_name: str = request.param
        self.options: dict[str, object] = {}
        self.setup = TransportSetup()
        if self.scheme_name == "quic":
            certificate, key = request.getfixturevalue("quic_files")
            self.options = {"certificate": str(certificate), "private_key": str(key)}
            self.setup = TransportSetup(peer_options={"ca": str(certificate)})

    def make_transport(self, events: TransportEvents) -> Transport:
        return REGISTRY.transport_class(self.scheme_name)(events, **self.options)

    def transport_setup(self) -> TransportSetup:
        return self.setup


class TestMemoryTransportConforms(TransportConformance):
    network = MemoryNetwork()

    def make_transport(self, events: TransportEvents) -> Transport:
        return self.network.transport_class(events)

    def transport_setup(self) -> TransportSetup:
        return TransportSetup(listen_host=MEMORY_HOST)


class TestUnreliableMemoryTransportConforms(TransportConformance):
    network = MemoryNetwork(reliable=False)

    def make_transport(self, events: TransportEvents) -> Transport:
        return self.network.transport_class(events)

    def transport_setup(self) -> TransportSetup:
        return TransportSetup(listen_host=MEMORY_HOST)


def test_the_built_in_transports_include_udp() -> None:
    assert "udp" in BUILTIN_TRANSPORTS


# -- the memory network --------------------------------------------------------------


def memory_config(name: str) -> NodeConfig:
    return NodeConfig(name=name, listen={"memory": ListenConfig(MEMORY_HOST, 0)})


async def keeper(ctx: ActorContext) -> None:
    """Keeps the plain messages it receives; an RPC replies with them."""
    seen: list[object] = []
    async for msg in ctx:
        if isinstance(msg, Rpc):
            msg.respond({"seen": seen})
        else:
            seen.append(msg)


async def test_two_nodes_on_a_memory_network_exchange_a_message_and_an_rpc() -> None:
    network = MemoryNetwork()
    registry = PluginRegistry.load(plugins=[memory_plugin(network)])
    async with Node(memory_config("beta"), registry=registry) as beta, \
            Node(memory_config("alpha"), registry=registry) as alpha:
        beta.spawn(keeper, name="keeper")
        url = f"{beta.address('memory')}/keeper"
        await alpha.ref(url).send({"hello": "beta"})
        reply = await alpha.ref(url).rpc("what came?", timeout=20.0)
    assert url.startswith(f"memory://{MEMORY_HOST}:")
    assert reply == {"seen": [{"hello": "beta"}]}


async def test_a_node_that_does_not_listen_gets_its_rpc_reply_by_peer_name() -> None:
    network = MemoryNetwork(reliable=False)
    registry = PluginRegistry.load(plugins=[memory_plugin(network)])
    async with Node(memory_config("beta"), registry=registry) as beta:
        beta.spawn(keeper, name="keeper")
        peers = {"beta": PeerConfig(address=beta.address("memory"))}
        config = NodeConfig(name="alpha", listen={}, peers=peers)
        async with Node(config, registry=registry) as alpha:
            reply = await alpha.ref("beta/keeper").rpc("anything?", timeout=20.0)
    assert reply == {"seen": []}


def test_each_network_has_its_own_transport_class_declaring_its_reliability() -> None:
    reliable, unreliable = MemoryNetwork(), MemoryNetwork(reliable=False)
    assert reliable.transport_class is reliable.transport_class
    assert reliable.transport_class is not unreliable.transport_class
    assert reliable.transport_class.reliable and not unreliable.transport_class.reliable
    assert issubclass(unreliable.transport_class, MemoryTransport)


def test_a_transport_of_no_network_cannot_be_made() -> None:
    with pytest.raises(ConfigError, match="not bound to a network"):
        MemoryTransport(PacketRecorder())


def test_a_network_refuses_a_host_that_urls_cannot_carry() -> None:
    with pytest.raises(ConfigError, match="host 'no such host'"):
        MemoryNetwork(host="no such host")


def test_one_registry_takes_one_memory_network() -> None:
    plugins = [memory_plugin(MemoryNetwork()), memory_plugin(MemoryNetwork())]
    with pytest.raises(PluginConflict):
        PluginRegistry.load(entry_points=False, plugins=plugins)


def test_the_memory_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="batch_size = 10"):
        MemoryNetwork().transport_class(PacketRecorder(), batch_size=10)


async def _memory_pair(network: MemoryNetwork) -> tuple[Transport, PacketRecorder, HostPort]:
    events = PacketRecorder()
    transport = network.transport_class(events)
    return transport, events, await transport.listen(MEMORY_HOST, 0)


async def test_a_packet_arrives_in_a_later_turn_of_the_loop_not_during_send() -> None:
    network = MemoryNetwork()
    sender, _, _ = await _memory_pair(network)
    receiver, events, address = await _memory_pair(network)
    sender.send(address, b"later")
    assert events.packets == []
    await events.packet_count(1)
    assert events.packets[0][0] == b"later"
    await sender.close()
    await receiver.close()


async def test_a_packet_for_a_port_nobody_holds_is_reported_as_failed() -> None:
    network = MemoryNetwork()
    sender, events, _ = await _memory_pair(network)
    nowhere = (MEMORY_HOST, 1)
    sender.send(nowhere, b"lost")
    await events.until(lambda: bool(events.failures), "a failure")
    destination, error = events.failures[0]
    assert destination == nowhere
    assert isinstance(error, TransportError) and error.errno == errno.ECONNREFUSED
    await sender.close()


async def test_a_port_that_is_held_cannot_be_listened_on_again() -> None:
    network = MemoryNetwork()
    first, _, address = await _memory_pair(network)
    second = network.transport_class(PacketRecorder())
    with pytest.raises(TransportError, match="taken"):
        await second.listen(*address)
    await first.close()
    assert await second.listen(*address) == address  # a closed transport releases its port
    await second.close()


async def test_other_hosts_are_unreachable() -> None:
    transport = MemoryNetwork().transport_class(PacketRecorder())
    with pytest.raises(TransportError, match="one host 'memory-host'"):
        await transport.listen("127.0.0.1", 0)
    with pytest.raises(TransportError, match="one host 'memory-host'"):
        await transport.prepare("127.0.0.1", 9000)
    await transport.close()


# -- the kit's own surface -----------------------------------------------------------


def test_the_kit_exports_exactly_its_public_names() -> None:
    assert set(relay_core.testing.__all__) == {
        "CodecConformance", "CompressorConformance", "MemoryNetwork", "MemoryTransport",
        "PacketRecorder", "TransportConformance", "TransportSetup", "memory_plugin",
    }
    assert all(hasattr(relay_core.testing, name) for name in relay_core.testing.__all__)


@pytest.mark.parametrize("statement", [
    "import relay_core",
    "from relay_core.testing import MemoryNetwork, memory_plugin, PacketRecorder",
])
def test_importing_relay_core_or_the_memory_transport_imports_no_test_tools(
    statement: str,
) -> None:
    code = f"{statement}; import sys; print(sorted({{'hypothesis', 'pytest'}} & set(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert output.strip() == "[]"


# -- the kit fails broken plugins ---------------------------------------------------------


class _UnboundedZlib(Compressor):
    name = "unbounded"

    def compress(self, data: bytes) -> bytes | None:
        return zlib.compress(data)

    def decompress(self, data: bytes, max_output_size: int) -> bytes:
        return zlib.decompress(data)  # ignores the limit, and lets zlib.error out


class _UnboundedZlibSuite(CompressorConformance):
    def make_compressor(self) -> Compressor:
        return _UnboundedZlib()


class _LeakyJson(Codec):
    name = "leaky-json"

    def encode(self, obj: object) -> bytes:
        import json

        return json.dumps(obj).encode()

    def decode(self, data: bytes) -> object:
        import json

        return json.loads(data)  # lets json's errors out


class _LeakyJsonSuite(CodecConformance):
    def make_codec(self) -> Codec:
        return _LeakyJson()


class _CorruptingTransport(MemoryTransport):
    network = MemoryNetwork()

    def send(self, destination: HostPort, packet: bytes) -> None:
        super().send(destination, packet[:-1] + b"!" if len(packet) > 100 else packet)


class _CorruptingSuite(TransportConformance):
    def make_transport(self, events: TransportEvents) -> Transport:
        return _CorruptingTransport(events)

    def transport_setup(self) -> TransportSetup:
        return TransportSetup(listen_host=MEMORY_HOST)


@pytest.mark.parametrize(("check", "failure"), [
    (_UnboundedZlibSuite().test_a_bomb_raises_decompression_limit_exceeded,
     pytest.fail.Exception),
    (_UnboundedZlibSuite().test_random_bytes_decompress_within_the_limit_or_raise_decompression_error,
     zlib.error),
    (_LeakyJsonSuite().test_random_bytes_decode_into_the_model_or_raise_decode_error, ValueError),
    (_CorruptingSuite().test_packets_arrive_intact_and_none_is_invented, AssertionError),
], ids=["bomb", "compressor error leaks", "codec error leaks", "corruption"])
def test_the_kit_fails_a_broken_plugin(
    check: Callable[[], None], failure: type[BaseException]
) -> None:
    with pytest.raises(BaseException) as caught:
        check()
    assert all(isinstance(error, failure) for error in _leaves(caught.value))


def _leaves(error: BaseException) -> list[BaseException]:
    """The errors in ``error``: hypothesis groups the distinct failures it finds."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
