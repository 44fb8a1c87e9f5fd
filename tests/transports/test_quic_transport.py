"""The QUIC transport, over loopback: streams and datagrams, TLS trust, failures and restarts.

Every wait is for an event the transport reports (a packet, a failure),
bounded by a generous limit: nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aioquic.asyncio.client import connect
from aioquic.quic.configuration import QuicConfiguration
from hypothesis import given
from hypothesis import strategies as st

from certs import Pki
from relay_core import (
    ConfigError,
    HostPort,
    MessageTooLarge,
    Transport,
    TransportError,
)
from relay_core.testing import PacketRecorder
from relay_transports import _quic
from relay_transports._certs import generate_self_signed
from relay_transports._quic import ALPN, QuicTransport

WAIT_LIMIT = 20.0
HERE = "127.0.0.1"


def _loopback_works(host: str) -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not (socket.has_ipv6 and _loopback_works("::1")),
                                reason="IPv6 loopback (::1) is not available here")
LOOPBACKS = [pytest.param("127.0.0.1", id="ipv4"), pytest.param("::1", id="ipv6", marks=needs_ipv6)]
MODES = ["stream", "datagram"]


class Recorder(PacketRecorder):
    """The kit's recorder, plus taking reports in turn: ``packet()`` and ``failure()``
    each return the oldest one not returned yet."""

    def __init__(self) -> None:
        super().__init__()
        self._next_packet = 0
        self._next_failure = 0

    async def packet(self) -> tuple[bytes, HostPort]:
        await self.until(lambda: len(self.packets) > self._next_packet, "the next packet")
        self._next_packet += 1
        return self.packets[self._next_packet - 1]

    async def failure(self) -> BaseException:
        await self.until(lambda: len(self.failures) > self._next_failure, "the next failure")
        self._next_failure += 1
        return self.failures[self._next_failure - 1][1]



@asynccontextmanager
async def quic(**options: object) -> AsyncIterator[tuple[QuicTransport, Recorder]]:
    events = Recorder()
    transport = QuicTransport(events, **options)  # type: ignore[arg-type]
    try:
        yield transport, events
    finally:
        await transport.close()


def server_options(pki: Pki, **more: object) -> dict[str, object]:
    return {"certificate": str(pki.server_cert), "private_key": str(pki.server_key), **more}


@asynccontextmanager
async def pair(
    pki: Pki, *, host: str = HERE, server: Mapping[str, object] | None = None,
    client: Mapping[str, object] | None = None,
) -> AsyncIterator[tuple[QuicTransport, Recorder, QuicTransport, Recorder, int]]:
    """A listening transport and a client transport that trusts the test CA."""
    async with quic(**server_options(pki, **(server or {}))) as (listener, listener_events):
        _, port = await listener.listen(host, 0)
        async with quic(ca=str(pki.ca_cert), **(client or {})) as (sender, sender_events):
            yield listener, listener_events, sender, sender_events, port


# -- packets both ways ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("host", LOOPBACKS)
async def test_packets_arrive_whole_and_in_order(pki: Pki, host: str, mode: str) -> None:
    async with pair(pki, host=host) as (_, received, client, _, port):
        destination = await client.prepare(host, port, {"mode": mode})
        for number in range(20):
            client.send(destination, b"packet %d" % number)
        await received.until(lambda: len(received.packets) == 20)
        if mode == "stream":
            assert received.payloads == [b"packet %d" % n for n in range(20)]
        else:  # datagrams may be reordered, though hardly on loopback
            assert sorted(received.payloads) == sorted(b"packet %d" % n for n in range(20))


@pytest.mark.parametrize("mode", MODES)
async def test_a_reply_travels_back_over_the_same_connection(pki: Pki, mode: str) -> None:
    async with pair(pki) as (server, server_events, client, client_events, port):
        destination = await client.prepare(HERE, port, {"mode": mode})
        client.send(destination, b"request")
        _, source = await server_events.packet()
        server.send(source, b"reply")
        assert await client_events.packet() == (b"reply", destination)
        client.send(destination, b"second request")
        assert (await server_events.packet())[1] == source  # no new connection was opened


async def test_a_ten_mebibyte_packet_arrives_intact_on_a_stream(pki: Pki) -> None:
    big = os.urandom(10 * 1024 * 1024)
    async with pair(pki) as (server, server_events, client, client_events, port):
        destination = await client.prepare(HERE, port)
        client.send(destination, big)
        client.send(destination, b"after")
        await server_events.until(lambda: len(server_events.packets) == 2)
        assert server_events.payloads == [big, b"after"]
        server.send(server_events.packets[0][1], big)
        assert (await client_events.packet())[0] == big


async def test_a_name_is_resolved_and_checked_against_the_certificate(pki: Pki) -> None:
    async with pair(pki) as (_, received, client, _, port):
        destination = await client.prepare("localhost", port)
        assert destination[1] == port
        client.send(destination, b"by name")
        assert (await received.packet())[0] == b"by name"


# -- datagram limits (aioquic stalls on a datagram too large for the peer) ----------------


async def test_a_datagram_above_the_peers_advertised_limit_is_refused_and_later_ones_flow(
    pki: Pki,
) -> None:
    async with pair(pki, server={"max_datagram_frame_size": 300}) as (_, received, client, _, port):
        destination = await client.prepare(HERE, port, {"mode": "datagram"})
        client.send(destination, b"first")
        await received.packet()
        limit = 300 - 1 - 2  # the frame type and a two-byte length take the rest
        with pytest.raises(MessageTooLarge, match="mode = \"stream\"") as refused:
            client.send(destination, bytes(limit + 1))
        assert refused.value.limit == limit
        client.send(destination, bytes(limit))
        client.send(destination, b"later")
        await received.until(lambda: len(received.packets) == 3)
        assert received.payloads[1:] == [bytes(limit), b"later"]


async def test_a_datagram_larger_than_one_quic_packet_is_refused_and_later_ones_flow(
    pki: Pki,
) -> None:
    async with pair(pki) as (_, received, client, _, port):
        destination = await client.prepare(HERE, port, {"mode": "datagram"})
        client.send(destination, b"first")
        await received.packet()
        limit = client.path_datagram_limit
        with pytest.raises(MessageTooLarge):
            client.send(destination, bytes(limit + 1))
        for _ in range(50):  # full-size datagrams, while acknowledgements travel too
            client.send(destination, bytes(limit))
        client.send(destination, b"later")
        await received.until(lambda: b"later" in received.payloads)
        assert bytes(limit) in received.payloads


async def test_larger_udp_payloads_carry_larger_datagrams(pki: Pki) -> None:
    client = {"udp_payload_size": 4000}
    async with pair(pki, server={"udp_payload_size": 4000}, client=client) as (
        _, received, sender, _, port,
    ):
        destination = await sender.prepare(HERE, port, {"mode": "datagram"})
        assert sender.path_datagram_limit > 3000
        sender.send(destination, bytes(3000))
        assert (await received.packet())[0] == bytes(3000)


async def test_a_queued_datagram_too_large_for_the_peer_is_reported_not_sent(pki: Pki) -> None:
    async with pair(pki, server={"max_datagram_frame_size": 300}) as (_, received, client,
                                                                      failures, port):
        destination = await client.prepare(HERE, port, {"mode": "datagram"})
        client.send(destination, bytes(500))  # the peer's limit is not known before the handshake
        client.send(destination, b"fits")
        assert isinstance(await failures.failure(), MessageTooLarge)
        assert (await received.packet())[0] == b"fits"


async def test_a_peer_that_takes_no_datagrams_gets_none(pki: Pki) -> None:
    async with pair(pki, server={"max_datagram_frame_size": 0}) as (_, received, client,
                                                                    failures, port):
        destination = await client.prepare(HERE, port, {"mode": "datagram"})
        client.send(destination, b"queued")
        refused = await failures.failure()  # at the handshake, which says "no datagrams"
        assert isinstance(refused, MessageTooLarge)
        assert refused.limit == 0
        with pytest.raises(MessageTooLarge):
            client.send(destination, b"sent later")
        assert received.packets == []


@given(st.integers(min_value=0, max_value=1 << 20))
def test_the_datagram_payload_room_is_the_largest_that_fits(frame_size: int) -> None:
    def frame(n: int) -> int:
        return 1 + (1 if n < 64 else 2 if n < 16384 else 4) + n

    room = _quic._payload_room(frame_size)
    if frame_size < 2:
        assert room == 0
    else:
        assert frame(room) <= frame_size < frame(room + 2)


# -- trust ------------------------------------------------------------------------------


async def test_a_server_signed_by_another_ca_is_rejected_and_nothing_is_delivered(
    pki: Pki,
) -> None:
    other = {"certificate": str(pki.other_server_cert), "private_key": str(pki.other_server_key)}
    async with pair(pki, server=other) as (_, received, client, failures, port):
        destination = await client.prepare(HERE, port)
        client.send(destination, b"secret")
        error = await failures.failure()
        assert isinstance(error, TransportError)
        assert "handshake" in str(error)
        await failures.until(lambda: bool(failures.unsent))
        assert failures.unsent == [(destination, b"secret", "peer_unreachable")]
        assert received.packets == []


async def test_a_server_certificate_for_another_name_is_rejected(pki: Pki) -> None:
    async with pair(pki) as (_, received, client, failures, port):
        destination = await client.prepare(HERE, port, {"server_name": "elsewhere.test"})
        client.send(destination, b"secret")
        assert "doesn't match" in str(await failures.failure())
        assert received.packets == []


async def test_insecure_skip_verify_connects_to_a_self_signed_server_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    generate_self_signed(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = {"certificate": str(tmp_path / "cert.pem"), "private_key": str(tmp_path / "key.pem")}
    async with quic(**server) as (listener, received), quic() as (client, _):
        _, port = await listener.listen(HERE, 0)
        with caplog.at_level(logging.WARNING, logger="relay_transports._quic"):
            destination = await client.prepare(HERE, port, {"insecure_skip_verify": True})
            client.send(destination, b"unverified")
            assert (await received.packet())[0] == b"unverified"
    assert any("insecure_skip_verify" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)


async def test_without_a_ca_a_self_signed_server_is_rejected(tmp_path: Path) -> None:
    generate_self_signed(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = {"certificate": str(tmp_path / "cert.pem"), "private_key": str(tmp_path / "key.pem")}
    async with quic(**server) as (listener, received), quic() as (client, failures):
        _, port = await listener.listen(HERE, 0)
        destination = await client.prepare(HERE, port)
        client.send(destination, b"x")
        assert "handshake" in str(await failures.failure())
        assert received.packets == []


async def test_mutual_tls_accepts_a_client_certificate_signed_by_client_ca(pki: Pki) -> None:
    server = {"client_ca": str(pki.ca_cert)}
    client = {"client_certificate": str(pki.client_cert), "client_key": str(pki.client_key)}
    async with pair(pki, server=server, client=client) as (listener, received, sender, replies, port):
        destination = await sender.prepare(HERE, port)
        sender.send(destination, b"authenticated")
        packet, source = await received.packet()
        assert packet == b"authenticated"
        listener.send(source, b"welcome")
        assert (await replies.packet())[0] == b"welcome"


@pytest.mark.parametrize("credentials", ["none", "other_ca"])
async def test_mutual_tls_rejects_a_client_without_an_acceptable_certificate(
    pki: Pki, credentials: str, caplog: pytest.LogCaptureFixture
) -> None:
    client: dict[str, object] = {}
    if credentials == "other_ca":  # a certificate, but not signed by client_ca
        client = {"client_certificate": str(pki.other_server_cert),
                  "client_key": str(pki.other_server_key)}
    server = {"client_ca": str(pki.ca_cert)}
    async with pair(pki, server=server, client=client) as (_, received, sender, failures, port):
        with caplog.at_level(logging.WARNING, logger="relay_transports._quic"):
            destination = await sender.prepare(HERE, port)
            sender.send(destination, b"let me in")
            error = await failures.failure()
        assert "client certificate rejected" in str(error)
        assert received.packets == []
    assert any("rejected" in r.getMessage() for r in caplog.records)


async def test_per_peer_client_certificate_overrides_the_transport_default(pki: Pki) -> None:
    server = {"client_ca": str(pki.ca_cert)}
    peer = {"client_certificate": str(pki.client_cert), "client_key": str(pki.client_key)}
    async with pair(pki, server=server) as (_, received, client, _, port):
        destination = await client.prepare(HERE, port, peer)
        client.send(destination, b"mine")
        assert (await received.packet())[0] == b"mine"


# -- failures and recovery -----------------------------------------------------------------


async def test_a_destination_where_nothing_listens_is_reported(pki: Pki) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HERE, 0))
        port = probe.getsockname()[1]
    async with quic(ca=str(pki.ca_cert), idle_timeout=5.0) as (client, failures):
        destination = await client.prepare(HERE, port)  # ICMP says so at once; else the timeout
        client.send(destination, b"anyone?")
        assert isinstance(await failures.failure(), TransportError)


async def test_a_full_queue_holds_senders_back_and_drops_only_past_its_hard_limit(
    pki: Pki,
) -> None:
    limits = {"queue_limit": 100, "max_packet_size": 1024}
    async with pair(pki, client=limits) as (_, received, client, failures, port):
        destination = await client.prepare(HERE, port)
        assert client.send(destination, bytes(60)) is None  # the handshake is not done yet
        full = client.send(destination, bytes(60))
        assert full is not None  # 120 bytes wait: senders that can wait, wait
        assert client.send(destination, bytes(900)) is full  # a reply is still taken
        client.send(destination, b"dropped" * 20)  # past queue_limit + max_packet_size
        assert failures.unsent == [(destination, b"dropped" * 20, "link_full")]
        async with asyncio.timeout(WAIT_LIMIT):
            await full  # the handshake completed: what waited went to the connection
        await received.until(lambda: len(received.packets) == 3)
        assert received.payloads == [bytes(60), bytes(60), bytes(900)]


async def test_a_restarted_server_is_reached_over_a_new_connection(pki: Pki) -> None:
    events = Recorder()
    first = QuicTransport(events, **server_options(pki))  # type: ignore[arg-type]
    _, port = await first.listen(HERE, 0)
    async with quic(ca=str(pki.ca_cert)) as (client, _):
        destination = await client.prepare(HERE, port)
        client.send(destination, b"before")
        await events.packet()
        await first.close()
        async with quic(**server_options(pki)) as (second, received):
            await second.listen(HERE, port)
            await _send_until_received(client, destination, received)


_CRASHING_SERVER = textwrap.dedent("""
    import asyncio, sys
    from relay_transports._quic import QuicTransport

    class Echo:
        def packet_received(self, packet, source):
            transport.send(source, packet)
        def send_failed(self, destination, error):
            pass

    async def main():
        global transport
        transport = QuicTransport(Echo(), certificate=sys.argv[1], private_key=sys.argv[2])
        _, port = await transport.listen("127.0.0.1", 0)
        print(port, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def test_a_server_that_died_without_closing_is_reached_after_it_restarts(
    pki: Pki,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING_SERVER, str(pki.server_cert), str(pki.server_key),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT_LIMIT):
            port = int(await process.stdout.readline())
        async with quic(ca=str(pki.ca_cert), idle_timeout=1.0) as (client, echoes):
            destination = await client.prepare(HERE, port)
            client.send(destination, b"echo me")
            assert (await echoes.packet())[0] == b"echo me"
            process.send_signal(signal.SIGKILL)
            await process.wait()
            async with quic(**server_options(pki)) as (second, received):
                await second.listen(HERE, port)
                await _send_until_received(client, destination, received)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _send_until_received(client: Transport, destination: HostPort,
                               received: Recorder) -> None:
    """Send until a packet arrives: those sent while the client notices are lost, not resent."""
    async with asyncio.timeout(WAIT_LIMIT):
        while not received.packets:
            client.send(destination, b"after")
            await asyncio.sleep(0.05)
    assert received.payloads[0] == b"after"


async def test_a_malformed_stream_closes_that_connection_only(pki: Pki) -> None:
    async with quic(**server_options(pki)) as (listener, received):
        _, port = await listener.listen(HERE, 0)
        configuration = QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
        configuration.load_verify_locations(str(pki.ca_cert))
        async with connect(HERE, port, configuration=configuration) as raw:
            _, writer = await raw.create_stream()
            writer.write(b"\x00\x00\x00\x00")  # a packet that declares zero bytes
            async with asyncio.timeout(WAIT_LIMIT):
                await raw.wait_closed()
            writer.close()
        async with quic(ca=str(pki.ca_cert)) as (client, _):
            destination = await client.prepare(HERE, port)
            client.send(destination, b"still serving")
            assert (await received.packet())[0] == b"still serving"
        assert received.payloads == [b"still serving"]


async def test_a_second_stream_from_a_client_closes_its_connection(pki: Pki) -> None:
    async with quic(**server_options(pki)) as (listener, received):
        _, port = await listener.listen(HERE, 0)
        configuration = QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
        configuration.load_verify_locations(str(pki.ca_cert))
        async with connect(HERE, port, configuration=configuration) as raw:
            writers = []
            for _ in range(2):  # aioquic opens a stream at its first write
                writers.append((await raw.create_stream())[1])
                writers[-1].write(b"\x00\x00\x00\x01x")
            async with asyncio.timeout(WAIT_LIMIT):
                await raw.wait_closed()
            for writer in writers:
                writer.close()
        assert received.payloads in ([], [b"x"])


# -- lifecycle ---------------------------------------------------------------------------


async def test_send_after_close_raises_and_close_is_idempotent(pki: Pki) -> None:
    async with pair(pki) as (_, received, client, _, port):
        destination = await client.prepare(HERE, port)
        client.send(destination, b"one")
        await received.packet()
        await client.close()
        await client.close()
        with pytest.raises(TransportError, match="closed"):
            client.send(destination, b"two")
        with pytest.raises(TransportError, match="closed"):
            await client.prepare(HERE, port)


async def test_closing_reports_packets_still_waiting_for_a_handshake(pki: Pki) -> None:
    async with pair(pki) as (_, _, client, failures, port):
        destination = await client.prepare(HERE, port)
        client.send(destination, b"never sent")
        await client.close()
        assert failures.unsent == [(destination, b"never sent", "closed_unsent")]


async def test_flushing_waits_until_the_peer_has_acknowledged_every_packet(pki: Pki) -> None:
    async with pair(pki) as (_, received, client, failures, port):
        destination = await client.prepare(HERE, port)
        packets = [number.to_bytes(4, "big") + bytes(60_000) for number in range(200)]
        for packet in packets:
            client.send(destination, packet)
        async with asyncio.timeout(WAIT_LIMIT):
            await client.flush()
        assert received.payloads == packets  # acknowledged means delivered here
        await client.close()
        assert failures.unsent == []


async def test_sending_to_an_unknown_destination_raises(pki: Pki) -> None:
    async with quic() as (transport, _):
        with pytest.raises(TransportError, match="prepare"):
            transport.send((HERE, 9), b"x")


async def test_preparing_a_destination_again_with_other_options_is_refused(pki: Pki) -> None:
    async with pair(pki) as (_, _, client, _, port):
        destination = await client.prepare(HERE, port)
        assert await client.prepare(HERE, port) == destination
        with pytest.raises(ConfigError, match="already prepared"):
            await client.prepare(HERE, port, {"mode": "datagram"})


async def test_a_packet_above_max_packet_size_is_refused(pki: Pki) -> None:
    async with pair(pki, client={"max_packet_size": 2048}) as (_, _, client, _, port):
        destination = await client.prepare(HERE, port)
        with pytest.raises(MessageTooLarge):
            client.send(destination, bytes(2049))


async def test_unresolvable_and_bad_destinations_raise_transport_errors() -> None:
    async with quic() as (transport, _):
        with pytest.raises(TransportError, match="port"):
            await transport.prepare(HERE, 0)
        with pytest.raises(TransportError, match="resolve"):
            await transport.prepare("no-such-host.invalid", 4433)


async def test_listening_on_a_port_in_use_raises_a_transport_error(pki: Pki) -> None:
    async with quic(**server_options(pki)) as (first, _), quic(**server_options(pki)) as (
        second, _,
    ):
        _, port = await first.listen(HERE, 0)
        with pytest.raises(TransportError, match="cannot listen"):
            await second.listen(HERE, port)


# -- configuration -----------------------------------------------------------------------


async def test_listening_needs_a_certificate_and_key() -> None:
    async with quic() as (transport, _):
        with pytest.raises(ConfigError, match="certificate and private_key"):
            await transport.listen(HERE, 0)


def test_a_certificate_without_its_key_is_refused(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="private_key is not"):
        QuicTransport(Recorder(), certificate=str(pki.server_cert))


def test_a_key_that_does_not_match_the_certificate_is_refused(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="not the key"):
        QuicTransport(Recorder(), certificate=str(pki.server_cert),
                      private_key=str(pki.client_key))


def test_an_unreadable_certificate_is_refused(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        QuicTransport(Recorder(), certificate=str(tmp_path / "missing.pem"),
                      private_key=str(pki.server_key))


@pytest.mark.parametrize("option, value", [
    ("max_packet_size", 10), ("batch_size", 1 << 40), ("idle_timeout", 0),
    ("idle_timeout", "30"), ("max_datagram_frame_size", 70000), ("queue_limit", -1),
    ("udp_payload_size", 1000), ("udp_payload_size", 70000),
    ("batch_size", True),
])
def test_out_of_range_listener_options_are_refused(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        QuicTransport(Recorder(), **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("options, allowed", [
    ({"max_buffered_input": 1024}, "an integer from 67174400 to 1099511627776"),
    ({"max_packet_size": 1 << 20, "max_buffered_input": (1 << 20) - 1},
     "an integer from 1048576 to"),
    ({"max_buffered_input": 1 << 41}, "an integer from 67174400 to 1099511627776"),
    ({"max_buffered_input": "64 MiB"}, "an integer from 67174400"),
    ({"max_buffered_input": True}, "an integer from 67174400"),
])
def test_a_bad_max_buffered_input_names_itself_its_value_and_what_is_allowed(
    options: dict[str, object], allowed: str,
) -> None:
    with pytest.raises(ConfigError, match=rf"\[listen\.quic\] max_buffered_input = .*{allowed}"):
        QuicTransport(Recorder(), **options)  # type: ignore[arg-type]


def test_max_buffered_input_defaults_to_max_packet_size_and_may_be_raised() -> None:
    assert QuicTransport(Recorder()).max_buffered_input == QuicTransport(Recorder()).max_packet_size
    assert QuicTransport(Recorder(), max_packet_size=1 << 20).max_buffered_input == 1 << 20
    assert QuicTransport(Recorder(), max_buffered_input=1 << 30).max_buffered_input == 1 << 30


def test_valid_peer_options_are_accepted(pki: Pki) -> None:
    QuicTransport.check_peer_options({
        "mode": "datagram", "ca": str(pki.ca_cert), "server_name": "localhost",
        "client_certificate": str(pki.client_cert), "client_key": str(pki.client_key),
    }, "peers.beta")
    QuicTransport.check_peer_options({"insecure_skip_verify": True}, "peers.beta")


@pytest.mark.parametrize("options, complaint", [
    ({"mode": "carrier-pigeon"}, "mode"),
    ({"colour": "blue"}, "unknown key"),
    ({"insecure_skip_verify": "yes"}, "true or false"),
    ({"server_name": ""}, "server_name"),
    ({"client_certificate": "x.pem"}, "client_key is not"),
    ({"ca": "/nonexistent/ca.pem"}, "cannot read"),
])
def test_bad_peer_options_are_refused(options: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint) as refused:
        QuicTransport.check_peer_options(options, "peers.beta")
    assert "[peers.beta]" in str(refused.value)


def test_trusting_a_ca_and_skipping_verification_contradict(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="contradict"):
        QuicTransport.check_peer_options(
            {"ca": str(pki.ca_cert), "insecure_skip_verify": True}, "peers.beta")


def test_the_plugin_provides_the_quic_scheme_with_streams_by_default() -> None:
    (entry_point,) = importlib.metadata.entry_points(group="net_relay", name="quic")
    assert entry_point.load().net_relay_transports() == [QuicTransport]
    assert QuicTransport.scheme == "quic"
    assert QuicTransport.reliable is True


async def test_past_its_hard_limit_a_connection_drops_and_reports_what_cannot_wait(
    pki: Pki,
) -> None:
    limits = {"queue_limit": 2048, "max_packet_size": 1024}
    async with pair(pki, client=limits) as (_, received, client, failures, port):
        destination = await client.prepare(HERE, port)
        client.send(destination, b"hello")
        await received.until(lambda: len(received.packets) == 1)  # the connection is up
        answers = [client.send(destination, bytes([number]) * 1000) for number in range(5)]
        assert answers[:2] == [None, None] and answers[2] is not None  # full: wait
        # A fourth unacknowledged KB would pass 2048 + 1024: the last two are dropped.
        assert failures.unsent == [(destination, bytes([number]) * 1000, "link_full")
                                   for number in (3, 4)]
        await received.until(lambda: len(received.packets) == 4)
        assert received.payloads[1:] == [bytes([number]) * 1000 for number in range(3)]
