"""The tcp transport on loopback: packets, replies, reconnection, bounded queues, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from relay_core import (
    ConfigError,
    LengthPrefixFraming,
    MalformedFrame,
    MessageTooLarge,
    PeerUnreachable,
    TransportError,
)
from relay_core.protocol.framing import StreamDeframer, frame_for_stream
from relay_core.testing import PacketRecorder
from relay_transports._budget import InputBudget
from relay_transports._tcp import TcpTransport
from relay_transports._tcp_stream import TURN_BUDGET, PacketIO

WAIT_LIMIT = 20.0
QUICK_BACKOFF = {"backoff_initial": 0.01, "backoff_max": 0.1}


class Recorder(PacketRecorder):
    """The kit's recorder, plus the failures whose text mentions something."""

    def failed_with(self, text: str) -> list[str]:
        return [str(error) for _, error in self.failures if text in str(error)]


@contextlib.asynccontextmanager
async def tcp(events: Recorder, **options: Any) -> AsyncIterator[TcpTransport]:
    transport = TcpTransport(events, **options)
    try:
        yield transport
    finally:
        await transport.close()


def numbered(count: int, start: int = 0) -> list[bytes]:
    return [b"packet %d" % number for number in range(start, start + count)]


@pytest.fixture
def refusing() -> Iterator[socket.socket]:
    """A loopback socket bound but not listening: connecting to its port is refused.

    Closing it frees the port for a listener (both use SO_REUSEADDR).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        yield sock


# -- packets and replies -------------------------------------------------------


async def test_packets_arrive_in_order_with_the_senders_address() -> None:
    server_events, client_events = Recorder(), Recorder()
    async with tcp(server_events) as server, tcp(client_events) as client:
        host, port = await server.listen("127.0.0.1", 0)
        destination = await client.prepare(host, port)
        for packet in numbered(100):
            client.send(destination, packet)
        await server_events.until(lambda: len(server_events.packets) == 100)
    assert server_events.payloads == numbered(100)
    assert {source[0] for _, source in server_events.packets} == {"127.0.0.1"}
    assert client_events.failures == []


async def test_a_reply_goes_back_over_the_connection_to_a_client_without_a_listener() -> None:
    server_events, client_events = Recorder(), Recorder()
    async with tcp(server_events) as server, tcp(client_events) as client:
        destination = await client.prepare(*await server.listen("127.0.0.1", 0))
        client.send(destination, b"request")
        await server_events.until(lambda: len(server_events.packets) == 1)
        _, source = server_events.packets[0]
        server.send(source, b"reply")
        await client_events.until(lambda: len(client_events.packets) == 1)
    assert client_events.packets == [(b"reply", destination)]


async def test_both_sides_can_listen_on_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    server_events, client_events = Recorder(), Recorder()
    async with tcp(server_events) as server, tcp(client_events) as client:
        try:
            host, port = await server.listen("::1", 0)
        except TransportError as exc:
            pytest.skip(f"no IPv6 loopback: {exc}")
        destination = await client.prepare("::1", port)
        client.send(destination, b"over v6")
        await server_events.until(lambda: len(server_events.packets) == 1)
    assert (host, destination) == ("::1", ("::1", port))
    assert server_events.packets[0][1][0] == "::1"


async def test_a_ten_mebibyte_packet_arrives_intact() -> None:
    big = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    server_events = Recorder()
    async with tcp(server_events) as server, tcp(Recorder()) as client:
        destination = await client.prepare(*await server.listen("127.0.0.1", 0))
        client.send(destination, big)
        client.send(destination, b"after")
        await server_events.until(lambda: len(server_events.packets) == 2)
    assert server_events.payloads == [big, b"after"]


async def test_packets_written_joined_to_their_prefix_or_beside_it_arrive_framed_alike() -> None:
    sizes = [1, 4095, 4096, 4097, 1 << 20, 1]
    packets = [bytes([size % 256]) * size for size in sizes]
    async with tcp(Recorder()) as client:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            destination = await client.prepare(*listener.getsockname())
            for packet in packets:
                client.send(destination, packet)
            peer, _ = await asyncio.get_running_loop().sock_accept(listener)
            with peer:
                assert await read_packets(peer, len(packets)) == packets


async def test_a_packet_over_max_packet_size_is_refused_at_once() -> None:
    async with tcp(Recorder(), max_packet_size=4096) as client:
        with pytest.raises(MessageTooLarge, match="4097 bytes exceeds the limit of 4096"):
            client.send(("127.0.0.1", 9), b"x" * 4097)


async def test_sending_to_an_unknown_destination_is_an_error() -> None:
    async with tcp(Recorder()) as client:
        with pytest.raises(TransportError, match="call prepare"):
            client.send(("127.0.0.1", 9), b"hello")


async def test_an_empty_packet_is_refused(refusing: socket.socket) -> None:
    async with tcp(Recorder()) as client:
        destination = await client.prepare(*refusing.getsockname())
        with pytest.raises(TransportError, match="empty packet"):
            client.send(destination, b"")


# -- reconnection --------------------------------------------------------------


async def test_a_client_reconnects_to_a_restarted_server_and_sends_nothing_twice() -> None:
    first_events, second_events, client_events = Recorder(), Recorder(), Recorder()
    async with tcp(client_events, **QUICK_BACKOFF) as client:
        async with tcp(first_events) as first:
            host, port = await first.listen("127.0.0.1", 0)
            destination = await client.prepare(host, port)
            for packet in numbered(10):
                client.send(destination, packet)
            await first_events.until(lambda: len(first_events.packets) == 10)
        await client_events.until(lambda: bool(client_events.failed_with("lost")))
        for packet in numbered(10, start=10):  # queued while there is no server
            client.send(destination, packet)
        async with tcp(second_events) as second:
            await second.listen(host, port)
            await second_events.until(lambda: len(second_events.packets) == 10)
            client.send(destination, b"later")
            await second_events.until(lambda: len(second_events.packets) == 11)
    assert first_events.payloads == numbered(10)
    assert second_events.payloads == [*numbered(10, start=10), b"later"]


async def test_a_refused_connection_drops_what_waited_as_peer_unreachable_and_the_next_send_connects(
    refusing: socket.socket,
) -> None:
    host, port = refusing.getsockname()
    server_events, client_events = Recorder(), Recorder()
    async with tcp(client_events, **QUICK_BACKOFF) as client:
        destination = await client.prepare(host, port)
        for packet in numbered(5):
            client.send(destination, packet)
        await client_events.until(lambda: len(client_events.unsent) == 5)
        assert client_events.unsent == [(destination, packet, "peer_unreachable")
                                        for packet in numbered(5)]
        unreachable = [error for _, error in client_events.failures
                       if isinstance(error, PeerUnreachable)]
        assert len(unreachable) == 1 and "refused" in str(unreachable[0]).lower()
        assert 0 < unreachable[0].retry_after <= QUICK_BACKOFF["backoff_max"]
        assert client.waiting(destination) == 0
        refusing.close()
        async with tcp(server_events) as server:
            await server.listen(host, port)
            client.send(destination, b"after the refusal")
            await server_events.until(lambda: len(server_events.packets) == 1)
    assert server_events.payloads == [b"after the refusal"]  # nothing it was told failed


async def test_a_full_queue_holds_senders_back_and_drops_only_past_its_hard_limit(
    refusing: socket.socket,
) -> None:
    host, port = refusing.getsockname()
    client_events = Recorder()
    frame_size = len(frame_for_stream(numbered(1)[0]))
    limit, largest = 3 * frame_size, 1024
    options = {"queue_limit": limit, "max_packet_size": largest, **QUICK_BACKOFF}
    async with tcp(client_events, **options) as client:
        destination = await client.prepare(host, port)
        answers = [client.send(destination, packet) for packet in numbered(10)]
        assert answers[:2] == [None, None]  # below the limit: go on
        full = answers[2]
        assert full is not None and all(answer is full for answer in answers[2:])
        # Packets of sends that cannot wait are still taken, up to limit + largest packet.
        client.send(destination, b"z" * 900)
        assert client_events.unsent == []
        client.send(destination, b"dropped" * 100)
        assert client_events.unsent == [(destination, b"dropped" * 100, "link_full")]
        async with asyncio.timeout(WAIT_LIMIT):
            await full  # the refused attempt empties the queue: its senders are let go
        unreachable = [packet for _, packet, reason in client_events.unsent
                       if reason == "peer_unreachable"]
        assert unreachable == [*numbered(10), b"z" * 900]


async def test_an_empty_queue_takes_one_packet_larger_than_its_limit(
    refusing: socket.socket,
) -> None:
    events = Recorder()
    async with tcp(events, queue_limit=0) as client:
        destination = await client.prepare(*refusing.getsockname())
        assert client.send(destination, b"x" * 1000) is not None  # taken, and full now
        assert events.unsent == []


async def test_a_listener_closes_idle_connections_and_the_client_reconnects() -> None:
    server_events, client_events = Recorder(), Recorder()
    async with tcp(server_events, idle_timeout=0.05) as server, tcp(client_events) as client:
        destination = await client.prepare(*await server.listen("127.0.0.1", 0))
        client.send(destination, b"first")
        await server_events.until(lambda: len(server_events.packets) == 1)
        await client_events.until(lambda: bool(client_events.failed_with("lost")))
        client.send(destination, b"second")
        await server_events.until(lambda: len(server_events.packets) == 2)
    assert server_events.payloads == [b"first", b"second"]


async def test_a_peer_that_stops_reading_holds_senders_back_and_memory_stays_bounded() -> None:
    # The transport bounds what it holds itself, whatever the interpreter's socket
    # transport does with its write buffer: past its queue limit, send hands back a
    # future (hold the senders until it completes), and nothing is dropped.
    loop = asyncio.get_running_loop()
    events = Recorder()
    size, limit = 64 * 1024, 1024 * 1024
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        async with tcp(events, batch_size=size, queue_limit=limit) as client:
            destination = await client.prepare(*listener.getsockname()[:2])
            client.send(destination, b"hello")
            peer, _ = await loop.sock_accept(listener)
            with peer:
                await read_packets(peer, 1)  # the connection is up; now stop reading
                sent, full = 0, None
                while full is None and sent < 2000:  # 125 MiB: far beyond any buffer
                    full = client.send(destination, sent.to_bytes(4, "big") + bytes(size - 4))
                    sent += 1
                assert full is not None
                high_water = 4 * size
                assert client.pending(destination) <= limit + high_water + 2 * size
                arrived = await read_packets(peer, sent)
                async with asyncio.timeout(WAIT_LIMIT):
                    await full
    numbers = [int.from_bytes(packet[:4], "big") for packet in arrived]
    assert numbers == list(range(sent))
    assert not events.failures and not events.unsent


async def read_packets(sock: socket.socket, count: int) -> list[bytes]:
    """Read ``count`` length-prefixed packets from a raw socket."""
    loop = asyncio.get_running_loop()
    deframer = StreamDeframer(max_packet_size=1 << 20)
    packets: list[bytes] = []
    async with asyncio.timeout(WAIT_LIMIT):
        while len(packets) < count:
            packets += deframer.feed(await loop.sock_recv(sock, 1 << 20))
    return packets


# -- bad input and closing ------------------------------------------------------


async def test_a_declared_length_over_the_limit_closes_only_that_connection() -> None:
    server_events, client_events = Recorder(), Recorder()
    async with tcp(server_events, max_packet_size=1024) as server, tcp(client_events) as client:
        host, port = await server.listen("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write((1025).to_bytes(4, "big") + b"x" * 100)
        async with asyncio.timeout(WAIT_LIMIT):
            assert await reader.read() == b""
        writer.close()
        assert [type(error) for _, error in server_events.malformed] == [MalformedFrame]
        destination = await client.prepare(host, port)
        client.send(destination, b"still served")
        await server_events.until(lambda: len(server_events.packets) == 1)
    assert server_events.payloads == [b"still served"]


async def test_packets_whole_before_a_bad_length_in_the_same_chunk_are_delivered() -> None:
    events = Recorder()
    async with tcp(events, max_packet_size=1024) as server:
        host, port = await server.listen("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(frame_for_stream(b"one") + frame_for_stream(b"two")
                     + (1025).to_bytes(4, "big") + b"x" * 100)
        async with asyncio.timeout(WAIT_LIMIT):
            assert await reader.read() == b""  # then the connection is closed
        writer.close()
    assert events.payloads == [b"one", b"two"]


async def test_sending_after_close_is_an_error_and_close_is_idempotent() -> None:
    server_events = Recorder()
    async with tcp(server_events) as server:
        client = TcpTransport(Recorder())
        destination = await client.prepare(*await server.listen("127.0.0.1", 0))
        await client.close()
        await client.close()
        with pytest.raises(TransportError, match="closed"):
            client.send(destination, b"too late")
        with pytest.raises(TransportError, match="closed"):
            await client.prepare(*destination)


async def test_close_flushes_what_was_written() -> None:
    server_events = Recorder()
    async with tcp(server_events) as server:
        async with tcp(Recorder()) as client:
            destination = await client.prepare(*await server.listen("127.0.0.1", 0))
            client.send(destination, b"first")
            await server_events.until(lambda: len(server_events.packets) == 1)
            client.send(destination, b"written just before close")
        await server_events.until(lambda: len(server_events.packets) == 2)
    assert server_events.payloads == [b"first", b"written just before close"]


async def test_close_reports_packets_that_never_left_the_queue(refusing: socket.socket) -> None:
    events = Recorder()
    async with tcp(events) as client:
        destination = await client.prepare(*refusing.getsockname())
        client.send(destination, b"never sent")
    assert events.unsent == [(destination, b"never sent", "closed_unsent")]


async def test_listening_on_a_port_in_use_is_a_transport_error() -> None:
    async with tcp(Recorder()) as first, tcp(Recorder()) as second:
        host, port = await first.listen("127.0.0.1", 0)
        with pytest.raises(TransportError, match=f"cannot listen on tcp 127.0.0.1:{port}"):
            await second.listen(host, port)


async def test_an_unresolvable_name_is_a_transport_error() -> None:
    async with tcp(Recorder()) as client:
        with pytest.raises(TransportError, match="cannot resolve tcp"):
            await client.prepare("no-such-host.invalid", 7000)


# -- a turn's share of what a connection read ----------------------------------------


class ReadSwitch:
    """The part of an asyncio transport that PacketIO pauses and resumes."""

    def __init__(self) -> None:
        self.reading = True
        self.switches = 0

    def pause_reading(self) -> None:
        assert self.reading, "paused twice"
        self.reading, self.switches = False, self.switches + 1

    def resume_reading(self) -> None:
        assert not self.reading, "resumed while reading"
        self.reading, self.switches = True, self.switches + 1

    def is_closing(self) -> bool:
        return False


class Delivered:
    """The node's side: records packets, and can answer one of them with a future."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.faults: list[MalformedFrame] = []
        self.hold_at: bytes | None = None
        self.holding: asyncio.Future[None] | None = None

    def __call__(self, packet: bytes, source: tuple[str, int]) -> asyncio.Future[None] | None:
        self.packets.append(packet)
        if packet == self.hold_at:
            self.holding = asyncio.get_running_loop().create_future()
            return self.holding
        return None


def packet_io(delivered: Delivered) -> tuple[PacketIO, ReadSwitch]:
    io = PacketIO(LengthPrefixFraming(), 1 << 20, delivered, ("127.0.0.1", 1),
                  delivered.faults.append, InputBudget(1 << 20), list[object]().clear)
    switch = ReadSwitch()
    io.transport = switch  # type: ignore[assignment]
    return io, switch


def kibibyte_packets(count: int) -> list[bytes]:
    return [b"%04d" % number + b"." * 1020 for number in range(count)]


async def turns_until(condition: Any, limit: int = 1000) -> int:
    for turn in range(limit):
        if condition():
            return turn
        await asyncio.sleep(0)
    raise AssertionError("the condition did not come true")


async def test_a_chunk_larger_than_a_turns_budget_is_handed_over_across_turns_in_order() -> None:
    delivered = Delivered()
    io, switch = packet_io(delivered)
    packets = kibibyte_packets(3 * TURN_BUDGET // 1024)
    others_ran_after: list[int] = []
    asyncio.get_running_loop().call_soon(lambda: others_ran_after.append(len(delivered.packets)))
    io.data_received(b"".join(frame_for_stream(packet) for packet in packets))
    first_turn = len(delivered.packets)
    assert 0 < first_turn < len(packets) and not switch.reading
    await turns_until(lambda: len(delivered.packets) == len(packets))
    assert delivered.packets == packets
    assert others_ran_after == [first_turn]  # the loop's other work ran in between
    await turns_until(lambda: switch.reading)
    assert not io.holding_back and switch.switches == 2


async def test_reading_stays_paused_until_the_node_is_done_and_nothing_is_held() -> None:
    delivered = Delivered()
    io, switch = packet_io(delivered)
    packets = kibibyte_packets(2 * TURN_BUDGET // 1024)
    delivered.hold_at = packets[3]  # the node asks to wait while the first turn runs
    io.data_received(b"".join(frame_for_stream(packet) for packet in packets))
    await turns_until(lambda: len(delivered.packets) == len(packets))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not switch.reading and io.holding_back
    assert delivered.holding is not None
    delivered.holding.set_result(None)
    await turns_until(lambda: switch.reading)
    assert delivered.packets == packets


async def test_a_fault_read_while_packets_were_held_is_reported_after_them() -> None:
    delivered = Delivered()
    io, _ = packet_io(delivered)
    packets = kibibyte_packets(2 * TURN_BUDGET // 1024)
    io.data_received(b"".join(frame_for_stream(packet) for packet in packets))
    # A transport may hand over one more chunk before its pause takes effect.
    io.data_received(frame_for_stream(b"late") + (0).to_bytes(4, "big"))
    assert not delivered.faults
    await turns_until(lambda: delivered.faults)
    assert delivered.packets == [*packets, b"late"]
    assert "declares 0 bytes" in str(delivered.faults[0])


async def test_a_connection_closed_here_drops_what_it_held() -> None:
    delivered = Delivered()
    io, _ = packet_io(delivered)
    packets = kibibyte_packets(2 * TURN_BUDGET // 1024)
    io.data_received(b"".join(frame_for_stream(packet) for packet in packets))
    handed_over = len(delivered.packets)
    io.drop_held()
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(delivered.packets) == handed_over and not io.holding_back


async def test_over_a_real_connection_a_burst_arrives_whole_and_in_order() -> None:
    events = Recorder()
    packets = kibibyte_packets(8 * TURN_BUDGET // 1024)
    async with tcp(events) as server, tcp(Recorder()) as client:
        destination = await client.prepare(*await server.listen("127.0.0.1", 0))
        for packet in packets:
            client.send(destination, packet)
        await events.until(lambda: len(events.packets) == len(packets))
    assert events.payloads == packets


# -- options ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("max_packet_size", 10, "an integer from 1024 to 4294967295"),
        ("max_packet_size", 2**32, "an integer from 1024 to 4294967295"),
        ("batch_size", 2**27, "an integer from 64 to 67174400"),
        ("batch_size", True, "an integer"),
        ("queue_limit", -1, "an integer from 0"),
        ("connect_timeout", 0, "a number of seconds above 0"),
        ("connect_timeout", float("nan"), "a number of seconds above 0"),
        ("backoff_initial", "fast", "a number of seconds above 0"),
        ("backoff_max", 0.01, "at least backoff_initial"),
        ("keepalive", -1, "from 0 \\(off\\)"),
        ("idle_timeout", -1, "a number of seconds from 0 \\(never\\)"),
        ("max_connections", 0, "an integer from 1"),
        ("handshake_timeout", 0, "a number of seconds above 0"),
        ("max_buffered_input", 1024, "an integer from 67174400"),
    ],
)
def test_a_bad_option_names_itself_its_value_and_what_is_allowed(
    option: str, value: object, allowed: str
) -> None:
    with pytest.raises(ConfigError, match=f"\\[listen.tcp\\] {option} = .*{allowed}"):
        options: dict[str, Any] = {option: value}
        TcpTransport(Recorder(), **options)


def test_the_defaults_are_valid() -> None:
    transport = TcpTransport(Recorder())
    assert transport.max_packet_size >= 16 * 1024 * 1024 + 1024
    assert transport.batch_size == 256 * 1024
    assert (TcpTransport.scheme, TcpTransport.reliable) == ("tcp", True)


def test_peer_options_reject_unknown_keys_listing_the_allowed_ones() -> None:
    with pytest.raises(
        ConfigError, match="unknown key\\(s\\) colour; tcp peers take .*server_name"
    ):
        TcpTransport.check_peer_options({"colour": "red"}, "peers.beta")


def test_peer_options_offer_no_way_to_skip_verification() -> None:
    with pytest.raises(ConfigError, match="cannot be turned off"):
        TcpTransport.check_peer_options({"tls": True, "insecure_skip_verify": True}, "peers.beta")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tls": "yes"}, "tls = 'yes' is not allowed: true or false"),
        ({"server_name": "example.org"}, "server_name only apply to TLS: add tls = true"),
        ({"tls": True, "ca": "/no/such/ca.pem"}, "ca = '/no/such/ca.pem': no readable file"),
        ({"tls": True, "ca": 7}, "ca = 7 is not allowed: a path"),
        ({"tls": True, "server_name": ""}, "server_name = '' is not allowed"),
    ],
)
def test_peer_options_are_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=f"\\[peers.beta\\] {message}"):
        TcpTransport.check_peer_options(options, "peers.beta")


def test_plain_peers_need_no_options() -> None:
    TcpTransport.check_peer_options({}, "peers.beta")
    TcpTransport.check_peer_options({"tls": False}, "peers.beta")
