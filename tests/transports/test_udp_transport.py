"""The UDP transport, over loopback: what it binds, what it delivers, how it fails.

Every wait is on an event the transport reports, bounded by a generous limit:
nothing here depends on how fast a busy machine is.
"""

from __future__ import annotations

import asyncio
import errno
import importlib.metadata
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_core import ConfigError, HostPort, MessageTooLarge, Transport, TransportError
from relay_core.testing import PacketRecorder
from relay_transports import UdpTransport, _udp, _udp_socket

WAIT_LIMIT = 20.0


def _loopback_works(family: socket.AddressFamily, host: str) -> bool:
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(
    not (socket.has_ipv6 and _loopback_works(socket.AF_INET6, "::1")),
    reason="IPv6 loopback (::1) is not available here",
)
needs_error_queue = pytest.mark.skipif(
    sys.platform != "linux",
    reason="unconnected UDP sockets learn of ICMP errors only on Linux (IP_RECVERR)",
)
LOOPBACKS = [pytest.param("127.0.0.1", id="ipv4"), pytest.param("::1", id="ipv6", marks=needs_ipv6)]


class Recorder(PacketRecorder):
    """The kit's recorder, plus waiting for the next packet."""

    async def packet(self) -> tuple[bytes, HostPort]:
        count = len(self.packets)
        await self.until(lambda: len(self.packets) > count, "the next packet")
        return self.packets[count]


@asynccontextmanager
async def udp(**options: int) -> AsyncIterator[tuple[UdpTransport, Recorder]]:
    events = Recorder()
    transport = UdpTransport(events, **options)
    try:
        yield transport, events
    finally:
        await transport.close()


def _free_port(family: socket.AddressFamily, host: str) -> int:
    """A port nothing listens on (free a moment ago; loopback has no other users here)."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


# --- exchanging packets ---------------------------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACKS)
async def test_two_transports_exchange_packets_and_replies_reach_the_source(host: str) -> None:
    async with udp() as (alpha, alpha_events), udp() as (beta, beta_events):
        alpha_address = await alpha.listen(host, 0)
        beta_address = await beta.listen(host, 0)
        alpha.send(await alpha.prepare(*beta_address), b"ping")
        packet, source = await beta_events.packet()
        assert (packet, source) == (b"ping", alpha_address)
        beta.send(source, b"pong")
        assert await alpha_events.packet() == (b"pong", beta_address)


@needs_ipv6
async def test_one_transport_listens_on_ipv4_and_ipv6_loopback_with_one_port() -> None:
    async with udp() as (server, events), udp() as (client, _):
        _, port = await server.listen("127.0.0.1", 0)
        assert await server.listen("::1", port) == ("::1", port)
        for host in ("127.0.0.1", "::1"):
            client.send(await client.prepare(host, port), host.encode())
            packet, source = await events.packet()
            assert packet == host.encode()
            assert ":" in source[0] if host == "::1" else "." in source[0]


@needs_ipv6
async def test_an_ipv6_wildcard_listener_leaves_the_ipv4_wildcard_port_free() -> None:
    async with udp() as (transport, _):
        _, port = await transport.listen("::", 0)
        assert await transport.listen("0.0.0.0", port) == ("0.0.0.0", port)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=2000), min_size=1, max_size=20))
def test_every_packet_arrives_byte_for_byte(packets: list[bytes]) -> None:
    async def exchange() -> list[bytes]:
        async with udp() as (sender, _), udp() as (receiver, events):
            destination = await sender.prepare(*await receiver.listen("127.0.0.1", 0))
            for packet in packets:
                sender.send(destination, packet)
            await events.until(lambda: len(events.packets) == len(packets))
            return [packet for packet, _ in events.packets]

    assert sorted(asyncio.run(exchange())) == sorted(packets)  # UDP promises no order


# --- reading --------------------------------------------------------------------------------


class _CountingReads:
    """Stands in for an endpoint's socket's recvfrom in its reader: counts reads, reads
    that found the socket empty, and the largest read budget the reader had while reading."""

    def __init__(self, reader: _udp_socket.DatagramReader) -> None:
        self._reader = reader
        self._sock = reader.sock
        self.reads = self.empty = self.largest_budget = 0

    def recvfrom(self, size: int) -> tuple[bytes, HostPort]:
        self.reads += 1
        self.largest_budget = max(self.largest_budget, self._reader.read_budget)
        try:
            return self._sock.recvfrom(size)  # type: ignore[no-any-return]
        except BlockingIOError:
            self.empty += 1
            raise



async def _counting_receiver(receiver: UdpTransport) -> tuple[_CountingReads, HostPort]:
    address = await receiver.listen("127.0.0.1", 0)
    endpoint = receiver._sockets.v4
    assert endpoint is not None
    counting = _CountingReads(endpoint.reader)
    endpoint.reader.recvfrom = counting.recvfrom
    return counting, address


async def test_datagrams_that_come_one_at_a_time_seldom_meet_an_empty_socket() -> None:
    async with udp() as (sender, _), udp() as (receiver, events):
        reads, address = await _counting_receiver(receiver)
        destination = await sender.prepare(*address)
        for number in range(40):
            sender.send(destination, bytes([number]))
            await events.packet()
        assert [packet for packet, _ in events.packets] == [bytes([n]) for n in range(40)]
        # Reading until empty would have cost 40 empty reads; the budget costs one
        # every few wakeups, when it tries to grow.
        assert reads.empty <= 40 // _udp_socket.FULL_READS_BEFORE_GROWING
        assert reads.reads == 40 + reads.empty


async def test_a_burst_is_read_in_bulk_and_every_datagram_of_it_arrives() -> None:
    async with udp() as (sender, _), udp() as (receiver, events):
        reads, address = await _counting_receiver(receiver)
        destination = await sender.prepare(*address)
        for number in range(200):  # all queued before the receiver first wakes
            sender.send(destination, number.to_bytes(2, "big"))
        await events.until(lambda: len(events.packets) == 200)
        assert sorted(packet for packet, _ in events.packets) == [
            number.to_bytes(2, "big") for number in range(200)]
        assert reads.largest_budget == _udp_socket.READS_PER_WAKEUP


# --- binding and resolving ------------------------------------------------------------------


async def test_listening_on_port_zero_returns_the_port_actually_bound() -> None:
    async with udp() as (transport, events):
        host, port = await transport.listen("127.0.0.1", 0)
        assert host == "127.0.0.1" and port != 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(b"to the real port", (host, port))
            assert (await events.packet())[0] == b"to the real port"


async def test_listening_on_a_busy_port_names_the_address_and_the_os_error() -> None:
    async with udp() as (first, _), udp() as (second, _):
        _, port = await first.listen("127.0.0.1", 0)
        for transport in (first, second):
            with pytest.raises(TransportError, match=f"127.0.0.1:{port}") as caught:
                await transport.listen("127.0.0.1", port)
            assert caught.value.errno == errno.EADDRINUSE


async def test_listening_on_a_host_that_does_not_resolve_raises_transport_error() -> None:
    async with udp() as (transport, _):
        with pytest.raises(TransportError, match="cannot resolve udp not a host:9"):
            await transport.listen("not a host", 9)


@pytest.mark.parametrize("port", [-1, 65536, "9"])
async def test_a_port_outside_0_to_65535_is_refused(port: int) -> None:
    async with udp() as (transport, _):
        with pytest.raises(TransportError, match="port must be an integer from 0 to 65535"):
            await transport.listen("127.0.0.1", port)
        with pytest.raises(TransportError, match="port must be an integer from 0 to 65535"):
            await transport.prepare("127.0.0.1", port)


async def test_prepare_without_a_listener_binds_a_socket_that_receives_the_replies() -> None:
    async with udp() as (client, client_events), udp() as (server, server_events):
        server_address = await server.listen("127.0.0.1", 0)
        client.send(await client.prepare(*server_address), b"question")
        packet, source = await server_events.packet()
        assert packet == b"question" and source[1] != 0
        server.send(source, b"answer")
        assert await client_events.packet() == (b"answer", server_address)


async def test_prepare_resolves_a_name_to_a_numeric_address_the_listener_can_reach() -> None:
    async with udp() as (client, _), udp() as (server, events):
        _, port = await server.listen("127.0.0.1", 0)
        await client.listen("127.0.0.1", 0)  # an IPv4 socket, so localhost resolves to IPv4
        destination = await client.prepare("localhost", port)
        assert destination == ("127.0.0.1", port)
        client.send(destination, b"by name")
        assert (await events.packet())[0] == b"by name"


async def test_prepare_of_a_name_that_does_not_resolve_raises_transport_error() -> None:
    async with udp() as (transport, _):
        with pytest.raises(TransportError, match="cannot resolve udp not a host:9"):
            await transport.prepare("not a host", 9)


# --- sending --------------------------------------------------------------------------------


async def test_a_packet_over_the_limit_raises_message_too_large_with_a_hint() -> None:
    async with udp(max_datagram_size=1000, batch_size=1000) as (transport, _):
        destination = await transport.prepare("127.0.0.1", _free_port(socket.AF_INET, "127.0.0.1"))
        with pytest.raises(MessageTooLarge, match="tcp:// or quic://") as caught:
            transport.send(destination, bytes(1001))
        assert (caught.value.size, caught.value.limit) == (1001, 1000)


@pytest.mark.parametrize("host", LOOPBACKS)
async def test_a_packet_of_exactly_the_largest_size_goes_through(host: str) -> None:
    async with udp() as (sender, _), udp() as (receiver, events):
        destination = await sender.prepare(*await receiver.listen(host, 0))
        sender.send(destination, bytes(range(256)) * 255 + bytes(65507 - 256 * 255))
        packet, _ = await events.packet()
        assert len(packet) == 65507 == sender.max_packet_size


async def test_sending_before_prepare_raises_transport_error_saying_so() -> None:
    async with udp() as (transport, _):
        await transport.listen("127.0.0.1", 0)
        with pytest.raises(TransportError, match=r"call prepare\(\)"):
            transport.send(("::1", 9), b"no IPv6 socket yet")


@needs_error_queue
@pytest.mark.parametrize("host", LOOPBACKS)
async def test_sending_to_a_closed_port_reports_send_failed_and_the_transport_keeps_working(
    host: str,
) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    async with udp() as (sender, sender_events), udp() as (receiver, receiver_events):
        nobody = await sender.prepare(host, _free_port(family, host))
        sender.send(nobody, b"into the void")
        await sender_events.until(lambda: bool(sender_events.failures))
        destination, error = sender_events.failures[0]
        assert destination == nobody
        assert isinstance(error, TransportError) and error.errno == errno.ECONNREFUSED
        assert _udp_socket.display(*nobody) in str(error)
        sender.send(await sender.prepare(*await receiver.listen(host, 0)), b"still here")
        assert (await receiver_events.packet())[0] == b"still here"


@needs_error_queue
@pytest.mark.parametrize("host", LOOPBACKS)
async def test_a_socket_that_drew_icmp_errors_goes_on_receiving(host: str) -> None:
    """An ICMP error queued on the socket wakes the loop with an error event, not a readable
    one: it is consumed and reported, and reading goes on (uvloop stops polling a socket
    whose error event its reader left unhandled)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    async with udp() as (node, node_events), udp() as (peer, _peer_events):
        node_address = await node.listen(host, 0)
        to_node = await peer.prepare(*node_address)
        for round_ in range(3):
            failures = len(node_events.failures)
            nobody = await node.prepare(host, _free_port(family, host))
            node.send(nobody, b"to a client that left")
            await node_events.until(
                lambda: len(node_events.failures) > failures)  # noqa: B023 (awaited here)
            await asyncio.sleep(0.05)  # the loop polls the socket while only the error waits
            peer.send(to_node, b"still heard %d" % round_)
            assert (await node_events.packet())[0] == b"still heard %d" % round_


needs_drop_counts = pytest.mark.skipif(
    sys.platform != "linux", reason="only Linux says how many datagrams a socket's buffer dropped")


@needs_drop_counts
async def test_datagrams_the_kernel_dropped_at_a_full_buffer_are_counted_exactly() -> None:
    """Everything sent arrives or is counted: a burst sent while the loop cannot read
    overflows a small receive buffer, and the kernel's own count of what it dropped shows."""
    burst = 300
    async with udp(receive_buffer=4096) as (receiver, events):
        assert receiver.receive_drops() == 0
        host, port = await receiver.listen("127.0.0.1", 0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
            for index in range(burst):  # no await: the loop reads nothing meanwhile
                flood.sendto(index.to_bytes(4, "big") * 250, (host, port))
        await events.until(lambda: len(events.packets) + receiver.receive_drops() == burst,
                           "every datagram read or counted as dropped")
        assert receiver.receive_drops() > 0
    assert receiver.receive_drops() == burst - len(events.packets)  # kept after close


@needs_error_queue
async def test_a_refusal_for_one_packet_does_not_cost_the_next_packet() -> None:
    async with udp() as (sender, sender_events), udp() as (receiver, receiver_events):
        destination = await sender.prepare(*await receiver.listen("127.0.0.1", 0))
        nobody = await sender.prepare("127.0.0.1", _free_port(socket.AF_INET, "127.0.0.1"))
        sender.send(nobody, b"refused")  # loopback answers at once: the error is now pending
        sender.send(destination, b"delivered")
        assert (await receiver_events.packet())[0] == b"delivered"
        await sender_events.until(lambda: bool(sender_events.failures))
        assert [destination for destination, _ in sender_events.failures] == [nobody]


class _Jammed:
    """Stands in for a socket's sendto: refuses (as a full socket does) while jammed."""

    def __init__(self, sendto: Callable[[bytes, _udp_socket.SockAddr], int]) -> None:
        self.sendto = sendto
        self.jammed = True

    def __call__(self, packet: bytes, address: _udp_socket.SockAddr) -> int:
        if self.jammed:
            raise BlockingIOError(errno.EAGAIN, "would block")
        return self.sendto(packet, address)


async def test_a_full_socket_holds_packets_back_in_order_up_to_a_bound_then_reports_drops() -> None:
    async with udp() as (sender, sender_events), udp() as (receiver, receiver_events):
        destination = await sender.prepare(*await receiver.listen("127.0.0.1", 0))
        endpoint = sender._sockets.v4
        assert endpoint is not None
        jam = endpoint.sendto = _Jammed(endpoint.sendto)
        kept = _udp.SEND_BACKLOG_LIMIT // 10_000
        for number in range(kept + 3):
            sender.send(destination, number.to_bytes(2, "big") * 5_000)
        assert len(sender_events.failures) == 3
        assert all("send buffer full" in str(error) for _, error in sender_events.failures)
        jam.jammed = False
        await receiver_events.until(lambda: len(receiver_events.packets) == kept)
        numbers = [int.from_bytes(packet[:2], "big") for packet, _ in receiver_events.packets]
        assert numbers == list(range(kept))


async def test_closing_with_packets_held_back_reports_them_lost() -> None:
    async with udp() as (sender, events):
        destination = await sender.prepare("127.0.0.1", _free_port(socket.AF_INET, "127.0.0.1"))
        assert sender._sockets.v4 is not None
        sender._sockets.v4.sendto = _Jammed(sender._sockets.v4.sendto)
        sender.send(destination, b"one")
        sender.send(destination, b"two")
        await sender.close()
        assert [str(error) for _, error in events.failures] == [
            f"[Errno {errno.ESHUTDOWN}] udp transport closed with 2 packets unsent"
        ]


# --- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"max_datagram_size": 63},
            "max_datagram_size = 63 is not allowed: an integer from 64 to 65507",
        ),
        ({"max_datagram_size": 65508}, "max_datagram_size = 65508 is not allowed"),
        ({"max_datagram_size": "1400"}, "max_datagram_size = '1400' is not allowed"),
        ({"max_datagram_size": True}, "max_datagram_size = True is not allowed"),
        (
            {"batch_size": 63},
            "batch_size = 63 is not allowed: an integer from 64 to max_datagram_size",
        ),
        (
            {"max_datagram_size": 1000, "batch_size": 1001},
            r"batch_size = 1001 is not allowed: an integer from 64 to max_datagram_size \(1000\)",
        ),
        (
            {"receive_buffer": -1},
            "receive_buffer = -1 is not allowed: an integer from 0 .the OS default.",
        ),
        ({"send_buffer": 2**31}, "send_buffer = 2147483648 is not allowed"),
    ],
)
def test_options_outside_their_range_raise_config_error_naming_option_value_and_range(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^\[listen\.udp\] " + message):
        UdpTransport(Recorder(), **options)  # type: ignore[arg-type]


def test_options_set_the_packet_limits_the_node_reads() -> None:
    transport = UdpTransport(Recorder(), max_datagram_size=64, batch_size=64)
    assert (transport.max_packet_size, transport.batch_size) == (64, 64)


async def test_buffer_sizes_of_zero_keep_the_os_defaults_and_work() -> None:
    async with udp(receive_buffer=0, send_buffer=0) as (sender, _), udp() as (receiver, events):
        sender.send(await sender.prepare(*await receiver.listen("127.0.0.1", 0)), b"defaults")
        assert (await events.packet())[0] == b"defaults"


async def test_buffer_sizes_beyond_what_the_kernel_allows_are_capped_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=_udp.__name__)
    big = 2**31 - 1
    async with udp(receive_buffer=big, send_buffer=big) as (sender, _), udp() as (receiver, events):
        sender.send(await sender.prepare(*await receiver.listen("127.0.0.1", 0)), b"capped")
        assert (await events.packet())[0] == b"capped"
    for kind in ("receive", "send"):
        assert f"udp {kind} buffer: requested {big} bytes, the OS reports" in caplog.text


# --- closing --------------------------------------------------------------------------------


async def test_close_is_idempotent_and_later_calls_raise_transport_error() -> None:
    async with udp() as (transport, _):
        destination = await transport.listen("127.0.0.1", 0)
        await transport.close()
        await transport.close()
        with pytest.raises(TransportError, match="closed"):
            transport.send(destination, b"too late")
        with pytest.raises(TransportError, match="closed"):
            await transport.listen("127.0.0.1", 0)
        with pytest.raises(TransportError, match="closed"):
            await transport.prepare("127.0.0.1", 9)


async def test_close_releases_the_port() -> None:
    async with udp() as (first, _), udp() as (second, _):
        address = await first.listen("127.0.0.1", 0)
        await first.close()
        assert await second.listen(*address) == address


# --- plugin ---------------------------------------------------------------------------------


def test_the_udp_entry_point_provides_the_transport_for_the_udp_scheme() -> None:
    assert issubclass(UdpTransport, Transport)
    assert (UdpTransport.scheme, UdpTransport.reliable) == ("udp", False)
    (entry_point,) = importlib.metadata.entry_points(group="net_relay", name="udp")
    assert entry_point.load().net_relay_transports() == [UdpTransport]
