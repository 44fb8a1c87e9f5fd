"""TransportEvents that remember what they were told, for tests to wait on and inspect."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..errors import MalformedFrame
from ..interfaces import ConnectionDropReason, HostPort, UnsentReason

__all__ = ["PacketRecorder"]

DEFAULT_WAIT_LIMIT = 30.0
"""Seconds :meth:`PacketRecorder.until` waits: a guard against a hang, never a measurement."""


class PacketRecorder:
    """Keeps every packet and failure a transport reports, and wakes a test waiting for them."""

    def __init__(self) -> None:
        self.packets: list[tuple[bytes, HostPort]] = []
        """``(packet, source)`` in the order they arrived."""
        self.failures: list[tuple[HostPort | None, BaseException]] = []
        """``(destination, error)`` in the order they were reported."""
        self.unsent: list[tuple[HostPort, bytes, UnsentReason]] = []
        """``(destination, packet, reason)`` for each packet reported never written."""
        self.malformed: list[tuple[HostPort, MalformedFrame]] = []
        """``(source, error)`` for each connection closed for input that did not parse."""
        self.dropped: list[tuple[HostPort, ConnectionDropReason]] = []
        """``(source, reason)`` for each connection refused or closed for a limit."""
        self._changed = asyncio.Event()

    def packet_received(self, packet: bytes, source: HostPort) -> None:
        self.packets.append((packet, source))
        self._changed.set()

    def send_failed(self, destination: HostPort | None, error: BaseException) -> None:
        self.failures.append((destination, error))
        self._changed.set()

    def packets_unsent(self, destination: HostPort, packets: Sequence[bytes],
                       reason: UnsentReason) -> None:
        self.unsent += [(destination, packet, reason) for packet in packets]
        self._changed.set()

    def input_malformed(self, source: HostPort, error: MalformedFrame) -> None:
        self.malformed.append((source, error))
        self._changed.set()

    def connection_dropped(self, source: HostPort, reason: ConnectionDropReason) -> None:
        self.dropped.append((source, reason))
        self._changed.set()

    @property
    def payloads(self) -> list[bytes]:
        """The packets alone, in arrival order."""
        return [packet for packet, _ in self.packets]

    async def until(self, condition: Callable[[], bool], what: str = "a condition",
                    limit: float = DEFAULT_WAIT_LIMIT) -> None:
        """Return once ``condition()`` holds; raise TimeoutError naming ``what`` after ``limit``."""
        try:
            async with asyncio.timeout(limit):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"waited {limit} s for {what}; {self._summary()}") from None

    async def packet_count(self, count: int, limit: float = DEFAULT_WAIT_LIMIT) -> None:
        """Return once at least ``count`` packets have arrived."""
        await self.until(lambda: len(self.packets) >= count, f"{count} packets", limit)

    def _summary(self) -> str:
        failures = "; ".join(f"{error}" for _, error in self.failures[-3:])
        return f"{len(self.packets)} packets arrived, {len(self.failures)} failures ({failures})"
