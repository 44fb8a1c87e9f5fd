"""A quic listener under a flood of handshakes that never complete, and under clients that
send part of a large packet and stop.

Each attacker is aioquic's own client-side ``QuicConnection`` driven by hand over
one raw UDP socket: it sends its Initial (and, where it answers, its Initial
with the Retry token), then never says another word. Promises: such a flood
creates no connection state when its source cannot answer a Retry; where it can,
the listener's tables stay under their caps, the oldest unfinished handshake
making room for a new one (counted), and a client past the connection cap is
refused (counted); the tables empty again once the abandoned handshakes time out;
and a real client is served throughout (or, refused, learns it at once). The
unfinished packets of all connections together stay within ``max_buffered_input``:
the connection whose unfinished packet would pass it is closed (counted), and the
listener keeps serving others.
Every flood is bounded in count; every wait is on a condition, with a limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicPacketType, pull_quic_header

from certs import Pki
from nodes import wait_for
from relay_core import ListenConfig, Node, NodeConfig, PeerUnreachable
from relay_core.testing import PacketRecorder
from relay_transports._quic import ALPN, QuicTransport

HERE = "127.0.0.1"
FLOOD = 500
WAIT_LIMIT = 30.0



class _Inbox(asyncio.DatagramProtocol):
    """What the attacker's socket receives, for an attacker that answers Retry packets."""

    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.datagrams.put_nowait(data)


class Attacker:
    """One UDP socket opening handshakes it will never finish."""

    def __init__(self, udp: asyncio.DatagramTransport, inbox: _Inbox,
                 target: tuple[str, int]) -> None:
        self.udp = udp
        self.inbox = inbox
        self.target = target

    def _client(self) -> QuicConnection:
        configuration = QuicConfiguration(is_client=True, alpn_protocols=[ALPN],
                                          server_name="localhost")
        client = QuicConnection(configuration=configuration)
        client.connect(self.target, now=time.monotonic())
        return client

    def _send(self, client: QuicConnection) -> None:
        for datagram, _ in client.datagrams_to_send(now=time.monotonic()):
            self.udp.sendto(datagram)

    def initial_only(self) -> None:
        """An Initial that never hears its answer, as from a forged source address."""
        self._send(self._client())

    async def through_retry(self) -> None:
        """An Initial, then (told to retry) the Initial with its token, then silence:
        what a source that can receive, but never completes, costs the listener."""
        client = self._client()
        self._send(client)
        async with asyncio.timeout(WAIT_LIMIT):
            while True:
                datagram = await self.inbox.datagrams.get()
                header = pull_quic_header(Buffer(data=datagram), host_cid_length=8)
                if (header.packet_type == QuicPacketType.RETRY
                        and header.destination_cid == client.host_cid):
                    break
        client.receive_datagram(datagram, self.target, now=time.monotonic())
        self._send(client)


@asynccontextmanager
async def attacker(port: int) -> AsyncIterator[Attacker]:
    inbox = _Inbox()
    udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: inbox, remote_addr=(HERE, port))
    try:
        yield Attacker(udp, inbox, (HERE, port))
    finally:
        udp.close()


@asynccontextmanager
async def listener(pki: Pki, **options: object
                   ) -> AsyncIterator[tuple[QuicTransport, PacketRecorder, int]]:
    events = PacketRecorder()
    transport = QuicTransport(events, certificate=str(pki.server_cert),  # type: ignore[arg-type]
                              private_key=str(pki.server_key), **options)
    try:
        _, port = await transport.listen(HERE, 0)
        yield transport, events, port
    finally:
        await transport.close()


async def a_real_client_is_served(pki: Pki, server_events: PacketRecorder, port: int) -> None:
    client = QuicTransport(PacketRecorder(), ca=str(pki.ca_cert))
    try:
        destination = await client.prepare(HERE, port)
        client.send(destination, b"still there?")
        await server_events.until(lambda: b"still there?" in server_events.payloads,
                                  "the real client's packet")
    finally:
        await client.close()


# -- address validation ------------------------------------------------------------------


async def test_a_flood_of_initials_from_sources_that_cannot_answer_creates_no_connection(
    pki: Pki,
) -> None:
    async with listener(pki) as (server, events, port), attacker(port) as flood:
        for _ in range(FLOOD):
            flood.initial_only()
        await a_real_client_is_served(pki, events, port)  # after the flood, in the same queue
        load = server.listener_load()
        assert load.connections <= 1 and load.handshakes == 0
        assert load.connection_ids < 20  # the real client's connection's IDs, nothing else


# -- caps --------------------------------------------------------------------------------


async def test_past_max_handshakes_the_oldest_unfinished_one_makes_room_and_is_counted(
    pki: Pki,
) -> None:
    async with listener(pki, max_handshakes=20) as (server, events, port), \
            attacker(port) as flood:
        for _ in range(60):
            await flood.through_retry()
        await wait_for(lambda: len(events.dropped) >= 40, "40 dropped handshakes reported")
        load = server.listener_load()
        assert load.handshakes <= 20 and load.connections <= 20
        assert load.connection_ids <= 20 * 10  # no IDs left behind by the dropped ones
        assert [reason for _, reason in events.dropped] == ["handshakes_dropped"] * 40
        # Right after the flood, not once it has timed out: a real client gets in.
        await a_real_client_is_served(pki, events, port)


async def test_a_client_past_max_connections_is_refused_at_once_and_counted(pki: Pki) -> None:
    async with listener(pki, max_connections=1) as (server, events, port):
        first = QuicTransport(PacketRecorder(), ca=str(pki.ca_cert))
        refused_events = PacketRecorder()
        refused = QuicTransport(refused_events, ca=str(pki.ca_cert))
        try:
            destination = await first.prepare(HERE, port)
            first.send(destination, b"first")
            await events.until(lambda: b"first" in events.payloads, "the first client's packet")
            refused.send(await refused.prepare(HERE, port), b"one too many")
            await refused_events.until(lambda: bool(refused_events.failures), "the refusal")
            assert isinstance(refused_events.failures[0][1], PeerUnreachable)
            assert [reason for _, reason in events.dropped] == ["connections_refused"]
            assert b"one too many" not in events.payloads
            assert server.listener_load().connections == 1
        finally:
            await refused.close()
            await first.close()


def test_the_caps_are_checked_at_start(pki: Pki) -> None:
    for options in ({"max_connections": 0}, {"max_handshakes": -1}, {"retry": "yes"},
                    {"max_connections": 10, "max_handshakes": 11}):
        with pytest.raises(Exception, match=r"\[listen\.quic\]") as caught:
            QuicTransport(PacketRecorder(), **options)  # type: ignore[arg-type]
        assert type(caught.value).__name__ == "ConfigError"


# -- unfinished packets ------------------------------------------------------------------

PACKET = 1 << 20
PARTIAL = 900 * 1024
PREFIX = struct.Struct("!I")


@asynccontextmanager
async def raw_client(pki: Pki, port: int) -> AsyncIterator[QuicConnectionProtocol]:
    """A client speaking QUIC (aioquic's own) that writes whatever bytes it is told to."""
    configuration = QuicConfiguration(is_client=True, alpn_protocols=[ALPN])
    configuration.load_verify_locations(str(pki.ca_cert))
    async with connect(HERE, port, configuration=configuration) as raw:
        yield raw


async def test_unfinished_packets_on_many_connections_stay_within_the_total_budget(
    pki: Pki,
) -> None:
    async with listener(pki, max_packet_size=PACKET, max_buffered_input=2 * PACKET) as (
            server, events, port):
        async with contextlib.AsyncExitStack() as clients:
            writers = []
            for index in range(5):
                raw = await clients.enter_async_context(raw_client(pki, port))
                _, writer = await raw.create_stream()
                writers.append(writer)
                # A length promising a whole packet, then most of it, then silence.
                writer.write(PREFIX.pack(PACKET - 1) + bytes(PARTIAL))
                if index < 2:  # room for two
                    await wait_for(lambda i=index: server.buffered_input == (i + 1) * (
                        PARTIAL + PREFIX.size), "the unfinished packet held")
                else:
                    async with asyncio.timeout(WAIT_LIMIT):
                        await raw.wait_closed()
                    await wait_for(lambda i=index: len(events.dropped) == i - 1,
                                   "the connection over budget closed and counted")
                assert server.buffered_input <= 2 * PACKET
            assert [reason for _, reason in events.dropped] == ["connections_over_budget"] * 3
            assert server.buffered_input == 2 * (PARTIAL + PREFIX.size)
            assert events.payloads == []
            await a_real_client_is_served(pki, events, port)
            for writer in writers:
                writer.close()
        await wait_for(lambda: server.buffered_input == 0, "the budget given back")


async def test_a_node_counts_the_quic_connections_closed_over_budget(pki: Pki) -> None:
    config = NodeConfig(name="victim", listen={"quic": ListenConfig(HERE, 0, {
        "certificate": str(pki.server_cert), "private_key": str(pki.server_key),
        "max_packet_size": PACKET, "max_buffered_input": PACKET})})
    async with Node(config) as node:
        port = int(node.address("quic").rsplit(":", 1)[1])
        async with raw_client(pki, port) as first, raw_client(pki, port) as second:
            writers = []
            try:
                for raw in (first, second):
                    _, writer = await raw.create_stream()
                    writers.append(writer)
                    writer.write(PREFIX.pack(PACKET - 1) + bytes(PARTIAL))
                closing = [asyncio.ensure_future(raw.wait_closed()) for raw in (first, second)]
                done, still_open = await asyncio.wait(closing, timeout=WAIT_LIMIT,
                                                      return_when=asyncio.FIRST_COMPLETED)
                for waiting in still_open:
                    waiting.cancel()
                assert len(done) == 1  # whichever passed the budget first; the other holds
                await wait_for(lambda: node.stats().total["connections_over_budget"] == 1,
                               "the connection over budget counted")
            finally:
                for writer in writers:
                    writer.close()


async def test_stream_data_held_behind_a_gap_counts_against_the_total_budget(pki: Pki) -> None:
    # aioquic holds what arrives past a missing range until the range comes, and its flow
    # window grows with what arrives: a client that never sends the stream's first byte
    # makes it hold the rest.
    async with listener(pki, max_packet_size=PACKET, max_buffered_input=2 * PACKET) as (
            server, events, port):
        async with raw_client(pki, port) as raw:
            quic = raw._quic
            stream_id = quic.get_next_available_stream_id()
            quic.send_stream_data(stream_id, bytes(4 * PACKET))
            quic._streams[stream_id].sender._pending.subtract(0, 1)  # never sent
            raw.transmit()
            async with asyncio.timeout(WAIT_LIMIT):
                await raw.wait_closed()
        await wait_for(lambda: len(events.dropped) == 1, "the connection closed and counted")
        assert [reason for _, reason in events.dropped] == ["connections_over_budget"]
        assert server.buffered_input == 0
        await a_real_client_is_served(pki, events, port)


# -- clean-up ----------------------------------------------------------------------------


@pytest.mark.parametrize("retry", [True, False], ids=["retry", "no-retry"])
async def test_abandoned_handshakes_time_out_and_leave_the_tables_empty(
    pki: Pki, retry: bool,
) -> None:
    async with listener(pki, idle_timeout=1.0, retry=retry) as (server, events, port), \
            attacker(port) as flood:
        for _ in range(FLOOD):
            await flood.through_retry() if retry else flood.initial_only()
        await wait_for(lambda: server.listener_load().handshakes > 0, "handshakes to start")
        await wait_for(lambda: server.listener_load().connection_ids == 0,
                       "the abandoned handshakes to time out")
        assert server.listener_load().connections == 0
        await a_real_client_is_served(pki, events, port)


# -- through a node ----------------------------------------------------------------------


async def test_a_node_counts_the_handshakes_its_quic_listener_dropped(pki: Pki) -> None:
    config = NodeConfig(name="victim", listen={"quic": ListenConfig(HERE, 0, {
        "certificate": str(pki.server_cert), "private_key": str(pki.server_key),
        "max_handshakes": 5})})
    async with Node(config) as node:
        port = int(node.address("quic").rsplit(":", 1)[1])
        async with attacker(port) as flood:
            for _ in range(15):
                await flood.through_retry()
            await wait_for(lambda: node.stats().total["handshakes_dropped"] >= 10,
                           "the dropped handshakes counted")
        assert node.stats().total["handshakes_dropped"] == 10
