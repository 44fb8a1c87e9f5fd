"""The transport conformance suite: what every transport plugin must do, as pytest tests.

A plugin author subclasses :class:`TransportConformance` in a ``Test*`` class,
returns a transport from ``make_transport(events)`` and, where listening or
preparing needs more than ``127.0.0.1`` and no options, a :class:`TransportSetup`
from ``transport_setup()``. pytest collects the inherited tests.

The tests are plain functions that run their own event loop (``asyncio.run``),
so they need no async plugin for pytest. Every wait is for something the
transport reports, bounded by a generous limit against hangs: nothing depends
on how fast the machine is. Packets the suite sends are never empty (the node
never sends an empty packet).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import pytest

from ..errors import MessageTooLarge, TransportError
from ..interfaces import HostPort, Transport, TransportEvents
from ..protocol.wire import PACKET_HEADER_SIZE
from ._recorder import PacketRecorder
from ._registration import declaration_problems, registered_names

__all__ = ["TransportConformance", "TransportSetup"]


@dataclass(frozen=True, slots=True)
class TransportSetup:
    """How the suite listens with, and prepares destinations for, the transport under test."""

    listen_host: str = "127.0.0.1"
    """The host every listener binds (port 0)."""
    peer_options: Mapping[str, object] = field(default_factory=dict)
    """The per-peer options passed to ``prepare`` (``{"ca": path}`` for a TLS transport)."""
    large_packet_size: int = 1024 * 1024
    """The largest packet the suite sends is the smaller of this and ``max_packet_size``."""
    packet_count: int = 2000
    """How many packets the ordering and integrity tests send."""
    wait_limit: float = 30.0
    """Seconds any one wait may take before the test fails: a guard, not a measurement."""
    burst_bytes: int = 16 * 1024 * 1024
    """An unreliable transport is sent bursts of this many bytes without a pause (more than
    a socket's receive buffer holds), in packets of its ``batch_size``, at most 20000."""
    bursts: int = 2
    """How many such bursts."""
    counts_losses: bool = True
    """Whether every packet lost in a burst is reported: by ``receive_drops()`` at the
    receiver, or by ``events.packets_unsent`` / ``events.send_failed`` at the sender. False
    for a platform whose kernel does not say what it dropped."""


@dataclass(frozen=True, slots=True)
class _Side:
    """One transport under test, what it reports, and the address it listens on (if any)."""

    transport: Transport
    events: PacketRecorder
    address: HostPort | None


def _packet(index: int, size: int) -> bytes:
    """A packet that says which one it is and whose contents can be checked byte for byte."""
    header = index.to_bytes(4, "big")
    return header + random.Random(index).randbytes(max(size - len(header), 0))


class TransportConformance:
    """Subclass in a ``Test*`` class and implement :meth:`make_transport`; pytest runs the rest."""

    def make_transport(self, events: TransportEvents) -> Transport:
        """Return a new transport under test reporting to ``events`` (called in the loop)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_transport()")

    def transport_setup(self) -> TransportSetup:
        """How to listen and prepare; override for hosts or per-peer options."""
        return TransportSetup()

    # -- the harness -----------------------------------------------------------

    def _run(self, check: Callable[[TransportSetup], Awaitable[None]]) -> None:
        setup = self.transport_setup()

        async def bounded() -> None:
            async with asyncio.timeout(setup.wait_limit * 4):
                await check(setup)

        asyncio.run(bounded())

    @asynccontextmanager
    async def _sides(self, *listening: bool) -> AsyncIterator[list[_Side]]:
        """Transports that listen (or not) as asked, all closed on the way out."""
        setup = self.transport_setup()
        async with AsyncExitStack() as stack:
            sides = []
            for listens in listening:
                events = PacketRecorder()
                transport = self.make_transport(events)
                stack.push_async_callback(transport.close)
                address = await transport.listen(setup.listen_host, 0) if listens else None
                sides.append(_Side(transport, events, address))
            yield sides

    async def _prepared(self, sender: _Side, receiver: _Side, setup: TransportSetup) -> HostPort:
        assert receiver.address is not None
        return await sender.transport.prepare(*receiver.address, setup.peer_options)

    async def _delivered(self, sender: _Side, receiver: _Side, setup: TransportSetup,
                         packet: bytes) -> HostPort:
        """Send one packet and wait for it; return the destination used."""
        destination = await self._prepared(sender, receiver, setup)
        sender.transport.send(destination, packet)
        await receiver.events.packet_count(1, setup.wait_limit)
        assert receiver.events.packets[0][0] == packet
        return destination

    # -- class attributes and sizes --------------------------------------------

    def test_the_scheme_is_accepted_by_the_registry(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(False) as (side,):
                cls = type(side.transport)
                assert registered_names(cls) == [cls.scheme]
        self._run(check)

    def test_declared_options_match_the_constructor(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(False) as (side,):
                problems = declaration_problems(type(side.transport))
                assert not problems, "; ".join(problems)
        self._run(check)

    def test_reliable_is_a_bool_on_the_class(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(False) as (side,):
                assert type(type(side.transport).reliable) is bool
        self._run(check)

    def test_the_packet_sizes_leave_room_for_a_packet_header(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(False) as (side,):
                biggest, batch = side.transport.max_packet_size, side.transport.batch_size
                assert type(biggest) is int and type(batch) is int
                assert PACKET_HEADER_SIZE < batch <= biggest
        self._run(check)

    # -- listening and exchanging ------------------------------------------------

    def test_listening_on_port_zero_returns_the_port_it_bound(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(True, True) as (first, second):
                assert first.address is not None and second.address is not None
                assert first.address[0] == setup.listen_host and first.address[1] > 0
                assert first.address != second.address
        self._run(check)

    def test_two_transports_exchange_packets_both_ways(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(True, True) as (left, right):
                await self._delivered(left, right, setup, b"left to right")
                await self._delivered(right, left, setup, b"right to left")
                assert left.events.failures == [] and right.events.failures == []
        self._run(check)

    def test_a_reply_to_the_source_reaches_a_sender_that_does_not_listen(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(True, False) as (server, client):
                await self._delivered(client, server, setup, b"request")
                source = server.events.packets[0][1]
                server.transport.send(source, b"reply")
                await client.events.packet_count(1, setup.wait_limit)
                assert client.events.packets[0][0] == b"reply"
        self._run(check)

    def test_a_packet_of_the_largest_size_arrives_intact(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(True, True) as (left, right):
                size = min(setup.large_packet_size, left.transport.max_packet_size)
                await self._delivered(left, right, setup, _packet(1, size))
        self._run(check)

    def test_a_packet_over_the_largest_size_raises_message_too_large(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(True, True) as (left, right):
                destination = await self._prepared(left, right, setup)
                with pytest.raises(MessageTooLarge):
                    left.transport.send(destination, bytes(left.transport.max_packet_size + 1))
        self._run(check)

    # -- closing -----------------------------------------------------------------

    def test_sending_after_close_raises_transport_error(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(True, True) as (left, right):
                destination = await self._delivered(left, right, setup, b"before close")
                await left.transport.close()
                with pytest.raises(TransportError):
                    left.transport.send(destination, b"after close")
        self._run(check)

    def test_listening_or_preparing_after_close_raises_transport_error(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(False, True) as (closed, other):
                await closed.transport.close()
                with pytest.raises(TransportError):
                    await closed.transport.listen(setup.listen_host, 0)
                with pytest.raises(TransportError):
                    await self._prepared(closed, other, setup)
        self._run(check)

    def test_close_can_be_called_again_and_without_listening(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(False, True) as (idle, used):
                await idle.transport.close()
                await used.transport.close()
                await used.transport.close()
        self._run(check)

    # -- many packets ------------------------------------------------------------

    async def _send_many(self, sender: _Side, destination: HostPort,
                         setup: TransportSetup) -> dict[bytes, int]:
        """Send ``packet_count`` packets of varied sizes, yielding now and then to the loop."""
        largest = min(setup.large_packet_size, sender.transport.max_packet_size, 4096)
        sizes = random.Random(0)
        sent: dict[bytes, int] = {}
        for index in range(setup.packet_count):
            packet = _packet(index, sizes.randint(4, largest))
            sender.transport.send(destination, packet)
            sent[packet] = index
            if index % 32 == 31:
                await asyncio.sleep(0)
        return sent

    def test_a_reliable_transport_delivers_every_packet_once_and_in_order(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(True, True) as (left, right):
                if not type(left.transport).reliable:
                    pytest.skip("the transport is not reliable")
                destination = await self._prepared(left, right, setup)
                sent = await self._send_many(left, destination, setup)
                await right.events.packet_count(len(sent), setup.wait_limit)
                assert [packet for packet, _ in right.events.packets] == list(sent)
        self._run(check)

    def test_packets_arrive_intact_and_none_is_invented(self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(True, True) as (left, right):
                destination = await self._prepared(left, right, setup)
                sent = await self._send_many(left, destination, setup)
                fence = await self._fence(left, right, destination, setup)
                arrived = [packet for packet, _ in right.events.packets if packet not in fence]
                assert arrived, "no packet arrived"
                assert [packet for packet in arrived if packet not in sent] == []
        self._run(check)

    def test_an_unreliable_transport_survives_bursts_past_its_buffers_and_counts_losses(
            self) -> None:
        async def check(setup: TransportSetup) -> None:
            async with self._sides(True, True) as (left, right):
                if type(left.transport).reliable:
                    pytest.skip("the transport is reliable: the in-order test covers it")
                destination = await self._prepared(left, right, setup)
                size = max(min(left.transport.batch_size, left.transport.max_packet_size), 8)
                per_burst = min(max(setup.burst_bytes // size, 1), 20_000)
                sent: set[bytes] = set()
                for _ in range(setup.bursts):
                    # No pause inside a burst: the receiver cannot read until it ends.
                    for _ in range(per_burst):
                        packet = _packet(len(sent), size)
                        left.transport.send(destination, packet)
                        sent.add(packet)
                    await asyncio.sleep(0)
                fence = await self._fence(left, right, destination, setup)
                arrived = {packet for packet, _ in right.events.packets if packet not in fence}
                invented = len(arrived - sent)
                assert invented == 0, f"{invented} packets arrived that were never sent"
                reported = (len(left.events.unsent) + len(left.events.failures)
                            + right.transport.receive_drops())
                if setup.counts_losses:
                    lost = len(sent) - len(arrived)
                    assert reported >= lost, (
                        f"{lost} of {len(sent)} packets were lost but only {reported} were"
                        " reported (receive_drops, packets_unsent, send_failed)")
        self._run(check)

    async def _fence(self, sender: _Side, receiver: _Side, destination: HostPort,
                     setup: TransportSetup) -> set[bytes]:
        """Send marker packets until one arrives, so those sent before it had their chance."""
        fences: set[bytes] = set()

        def fenced() -> bool:
            return any(packet in fences for packet, _ in receiver.events.packets)

        async with asyncio.timeout(setup.wait_limit):
            while not fenced():
                fence = b"fence %d" % len(fences)
                fences.add(fence)
                sender.transport.send(destination, fence)
                try:
                    await receiver.events.until(fenced, "a fence packet", setup.wait_limit / 100)
                except TimeoutError:
                    continue  # an unreliable transport may lose a fence: send another
        return fences
