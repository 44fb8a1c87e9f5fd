"""The fault adapter: a Transport wrapper that loses, duplicates, reorders, delays
and damages packets on purpose, so a test can watch a node on a bad network.

The kernel of a test machine rarely offers netem; like Akka's failure-injector
adapter, this one sits between the node and a real transport, on both paths:
``send`` (outbound faults, per destination or for all) and the transport's
events (inbound faults on everything it receives).

Rules this module keeps:

- Every decision is drawn from one ``random.Random(seed)`` per profile in use
  (inbound, outbound, and each destination with a profile of its own), in a
  fixed order per packet: drop, jitter, reorder, corrupt, duplicate, corrupt
  the copy. A seeded profile decides the same way for the same packets.
- Faults act on whole packets, above the wrapped transport's framing: on a
  stream transport a lost packet is one the stream never carried, and the
  framing stays intact.
- A damaged packet is a copy with one bit flipped; the caller's bytes are never
  touched.
- Every packet the adapter holds (delayed, held back, a duplicate on its way)
  counts towards ``max_in_flight``; past it a packet is dropped and counted as
  ``overflow``, so memory stays bounded whatever the rates.
- ``close()`` cancels everything pending: nothing is delivered afterwards.
- Nothing raises out of a timer: a late send that fails goes to
  ``events.send_failed``, as a transport reports its own late failures.
"""

from __future__ import annotations

import asyncio
import difflib
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigError, MalformedFrame, MessageTooLarge, RelayError, TransportError
from ..interfaces import ConnectionDropReason, HostPort, Transport, TransportEvents, UnsentReason
from ..observe.stats import FAULT_COUNTERS

__all__ = [
    "COPY_DELAY",
    "DEFAULT_MAX_IN_FLIGHT",
    "FAULT_KEY",
    "HOLD_LIMIT",
    "FaultProfile",
    "FaultyTransport",
    "split_fault_options",
]

FAULT_KEY = "fault"
"""The key of a ``[peers.NAME]`` or ``[listen.SCHEME]`` table that holds its fault table."""

DEFAULT_MAX_IN_FLIGHT = 4096
"""Packets the adapter may hold at once (delayed, held back or duplicated)."""

COPY_DELAY = 0.001
"""Seconds a duplicate trails its original by (on top of the packet's delay)."""

HOLD_LIMIT = 0.05
"""Longest wait, beyond the profile's delay and jitter, of a held-back packet
for a next packet to overtake it; then it goes alone rather than be lost."""


_PROBABILITIES = ("drop", "duplicate", "reorder", "corrupt")
_DURATIONS = ("delay", "jitter")
_PROBABILITY = "a probability, a number from 0 to 1"
_SECONDS = "seconds, a finite number >= 0"
_ALLOWED = {  # in the order of FaultProfile's fields
    "drop": _PROBABILITY,
    "duplicate": _PROBABILITY,
    "reorder": _PROBABILITY,
    "delay": _SECONDS,
    "jitter": _SECONDS,
    "corrupt": _PROBABILITY,
    "seed": "an integer (leave it out for a random seed)",
}

Deliver = Callable[[HostPort, bytes], object]
"""Hands a packet on: to the wrapped transport (outbound) or to the node (inbound)."""


def _problem(key: str, value: object) -> str | None:
    """Why ``value`` may not be the fault setting ``key``, or None if it may."""
    if key == "seed":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
    elif isinstance(value, bool) or not isinstance(value, int | float):
        ok = False
    else:
        ok = math.isfinite(value) and value >= 0 and (key in _DURATIONS or value <= 1)
    return None if ok else f"{key} = {value!r}: must be {_ALLOWED[key]}"


def _limit(max_in_flight: object) -> int:
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 0:
        raise ConfigError(f"max_in_flight = {max_in_flight!r}: must be an integer >= 0")
    return max_in_flight


@dataclass(frozen=True, slots=True)
class FaultProfile:
    """What goes wrong with packets in one direction; all zero is a perfect network."""

    drop: float = 0.0
    """Probability that a packet is lost."""
    duplicate: float = 0.0
    """Probability that a packet arrives twice (the copy :data:`COPY_DELAY` later)."""
    reorder: float = 0.0
    """Probability that a packet is held back until the next one to the same place has gone."""
    delay: float = 0.0
    """Seconds added to every packet."""
    jitter: float = 0.0
    """Up to this many seconds more or less than ``delay``, uniformly (never below 0)."""
    corrupt: float = 0.0
    """Probability that one random bit of a packet is flipped."""
    seed: int | None = None
    """Same seed, same decisions for the same packets; None draws a random seed."""

    def __post_init__(self) -> None:
        for item in fields(self):
            problem = _problem(item.name, getattr(self, item.name))
            if problem:
                raise ConfigError(f"FaultProfile: {problem}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], where: str) -> FaultProfile:
        """Check and build a profile from a config table; ``where`` names the table."""
        for key in data:
            if key not in _ALLOWED:
                near = difflib.get_close_matches(key, _ALLOWED, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ConfigError(f"[{where}] unknown key {key!r}; allowed keys: "
                                  f"{', '.join(_ALLOWED)}{hint}")
        for key, value in data.items():
            problem = _problem(key, value)
            if problem:
                raise ConfigError(f"[{where}] {problem}")
        # Every key and value is checked above; TOML integers become floats.
        values: dict[str, Any] = {key: value if key == "seed" else float(value)  # type: ignore[arg-type]
                                  for key, value in data.items()}
        return cls(**values)

    @property
    def active(self) -> bool:
        """True if this profile does anything to packets."""
        return any(getattr(self, name) for name in (*_PROBABILITIES, *_DURATIONS))


def split_fault_options(
    options: Mapping[str, object], where: str
) -> tuple[FaultProfile | None, dict[str, object]]:
    """Take the ``fault`` table out of a peer's or listener's options.

    Return its profile (None when there is none) and the other options, which
    belong to the transport. ``where`` names the table, e.g. ``peers.beta``.
    """
    rest = {key: value for key, value in options.items() if key != FAULT_KEY}
    table = options.get(FAULT_KEY)
    if table is None:
        return None, rest
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{where}] {FAULT_KEY} = {table!r}: must be a table of fault "
                          f"settings with keys {', '.join(_ALLOWED)}")
    return FaultProfile.from_mapping(table, f"{where}.{FAULT_KEY}"), rest


@dataclass(frozen=True, slots=True)
class _Copy:
    """One copy of a packet to deliver."""

    packet: bytes
    delay: float
    """Seconds from now; 0 delivers at once."""
    held: bool = False
    """Reordered: it waits for the next packet to the same place."""


class _Dice:
    """Decides each packet's fate under one profile. No I/O and no clock: only its Random."""

    __slots__ = ("_counts", "_random", "profile")

    def __init__(self, profile: FaultProfile, counts: dict[str, int]) -> None:
        self.profile = profile
        self._random = random.Random(profile.seed)
        self._counts = counts

    def fate(self, packet: bytes) -> list[_Copy]:
        """The copies of ``packet`` to deliver: none if it is lost, two if duplicated."""
        profile, chance = self.profile, self._random.random
        if profile.drop and chance() < profile.drop:
            self._counts["dropped"] += 1
            return []
        delay = self._delay()
        held = bool(profile.reorder) and chance() < profile.reorder
        self._counts["reordered"] += held
        first = _Copy(self._damaged(packet), delay, held)
        if not (profile.duplicate and chance() < profile.duplicate):
            return [first]
        self._counts["duplicated"] += 1
        return [first, _Copy(self._damaged(packet), delay + COPY_DELAY)]

    def _delay(self) -> float:
        profile = self.profile
        delay = profile.delay
        if profile.jitter:
            delay = max(0.0, delay + self._random.uniform(-profile.jitter, profile.jitter))
        self._counts["delayed"] += delay > 0
        return delay

    def _damaged(self, packet: bytes) -> bytes:
        """``packet``, or a copy of it with one random bit flipped."""
        if not (packet and self.profile.corrupt and self._random.random() < self.profile.corrupt):
            return packet
        bit = self._random.randrange(len(packet) * 8)
        damaged = bytearray(packet)
        damaged[bit >> 3] ^= 1 << (bit & 7)
        self._counts["corrupted"] += 1
        return bytes(damaged)


class _Held:
    """Packets held back for one place, and the timer that lets them go at the latest."""

    __slots__ = ("packets", "timer")

    def __init__(self, timer: asyncio.TimerHandle) -> None:
        self.packets: list[bytes] = []
        self.timer = timer


class _Lane:
    """One direction through the adapter: where its packets wait and how they leave."""

    __slots__ = ("deliver", "held")

    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self.held: dict[HostPort, _Held] = {}


class _Events:
    """The events the wrapped transport reports to: received packets meet the inbound faults."""

    __slots__ = ("_adapter",)

    def __init__(self, adapter: FaultyTransport) -> None:
        self._adapter = adapter

    def packet_received(self, packet: bytes, source: HostPort) -> asyncio.Future[None] | None:
        return self._adapter._received(packet, source)

    def send_failed(self, destination: HostPort | None, error: BaseException) -> None:
        self._adapter.events.send_failed(destination, error)

    def packets_unsent(self, destination: HostPort, packets: Sequence[bytes],
                       reason: UnsentReason) -> None:
        self._adapter.events.packets_unsent(destination, packets, reason)

    def input_malformed(self, source: HostPort, error: MalformedFrame) -> None:
        self._adapter.events.input_malformed(source, error)

    def connection_dropped(self, source: HostPort, reason: ConnectionDropReason) -> None:
        self._adapter.events.connection_dropped(source, reason)


class FaultyTransport(Transport):
    """Wraps a transport and injects faults into what it sends and receives.

    Build it with the node's events and a factory for the real transport, so
    the wrapper sees received packets before the node does::

        faulty = FaultyTransport.wrap(events, UdpTransport, outbound=FaultProfile(drop=0.1))

    It reports the wrapped transport's ``scheme``, ``reliable``,
    ``max_packet_size`` and ``batch_size``.
    """

    def __init__(
        self,
        events: TransportEvents,
        make_inner: Callable[[TransportEvents], Transport],
        *,
        inbound: FaultProfile | None = None,
        outbound: FaultProfile | None = None,
        per_destination: Mapping[HostPort, FaultProfile] | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        super().__init__(events)
        self.max_in_flight = _limit(max_in_flight)
        self._counts = dict.fromkeys(FAULT_COUNTERS, 0)
        self._in_flight = self._peak = 0
        self._inbound = self._dice(inbound)
        self._outbound = self._dice(outbound)
        self._per_destination: dict[HostPort, _Dice | None] = {}
        """Profiles of their own; None there means no faults, whatever ``outbound`` says."""
        for destination, profile in (per_destination or {}).items():
            self.set_destination_profile(destination, profile)
        self._lanes = (_Lane(self._send_late), _Lane(self._deliver_in))
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._timer_keys = itertools.count()
        self._closed = False
        self.inner = make_inner(_Events(self))
        """The wrapped transport."""
        # scheme and reliable are class attributes of a Transport: the wrapper
        # answers for the transport it wraps, as the node asks an instance.
        self.scheme = self.inner.scheme  # type: ignore[misc]
        self.reliable = self.inner.reliable  # type: ignore[misc]
        self.max_packet_size = self.inner.max_packet_size
        self.batch_size = self.inner.batch_size

    @classmethod
    def wrap(
        cls,
        events: TransportEvents,
        make_inner: Callable[[TransportEvents], Transport],
        *,
        inbound: FaultProfile | None = None,
        outbound: FaultProfile | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> FaultyTransport:
        """The adapter around ``make_inner(events seen through the adapter)``."""
        return cls(events, make_inner, inbound=inbound, outbound=outbound,
                   max_in_flight=max_in_flight)

    def set_destination_profile(self, destination: HostPort, profile: FaultProfile | None) -> None:
        """Use ``profile`` instead of the outbound one for packets to ``destination``
        (an inactive profile: no faults there); None goes back to the outbound profile."""
        if profile is None:
            self._per_destination.pop(destination, None)
        else:
            self._per_destination[destination] = self._dice(profile)

    @property
    def in_flight(self) -> int:
        """Packets the adapter holds now (never above ``max_in_flight``)."""
        return self._in_flight

    def stats(self) -> dict[str, int]:
        """What the adapter did so far (:data:`FAULT_COUNTERS`), and what it holds now."""
        return {**self._counts, "in_flight": self._in_flight, "peak_in_flight": self._peak}

    async def listen(self, host: str, port: int) -> HostPort:
        return await self.inner.listen(host, port)

    async def prepare(self, host: str, port: int,
                      options: Mapping[str, object] | None = None) -> HostPort:
        return await self.inner.prepare(host, port, options)

    def packet_limits(self, destination: HostPort) -> tuple[int, int]:
        return self.inner.packet_limits(destination)

    def waiting(self, destination: HostPort) -> int:
        """What the wrapped transport holds (packets delayed here are not counted)."""
        return self.inner.waiting(destination)

    def receive_drops(self) -> int:
        return self.inner.receive_drops()

    def send(self, destination: HostPort, packet: bytes) -> asyncio.Future[None] | None:
        """Send ``packet`` through the destination's faults; raise for what is known at once.

        Without outbound faults, the wrapped transport's answer (a future while its
        queue is full) is handed back; a packet held for a delay or a reorder has no
        queue to fill yet, so the node is never told to wait for one.
        """
        if self._closed:
            raise TransportError(f"cannot send with the {self.scheme} fault adapter: it is closed")
        dice = self._per_destination.get(destination, self._outbound)
        if dice is None:
            full = self.inner.send(destination, packet)
            self._release(self._lanes[0], destination)
            return full
        if len(packet) > self.max_packet_size:  # a packet sent later could no longer raise
            raise MessageTooLarge(len(packet), self.max_packet_size)
        self._route(self._lanes[0], dice, destination, packet, self.inner.send)
        return None

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        """Cancel every pending packet, then close the wrapped transport."""
        if self._closed:
            return
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for lane in self._lanes:
            for held in lane.held.values():
                held.timer.cancel()
            lane.held.clear()
        self._in_flight = 0
        await self.inner.close()

    # -- the paths through the adapter ------------------------------------

    def _dice(self, profile: FaultProfile | None) -> _Dice | None:
        return _Dice(profile, self._counts) if profile is not None and profile.active else None

    def _received(self, packet: bytes, source: HostPort) -> asyncio.Future[None] | None:
        """Pass a packet in; the node's "stop reading" future passes back only when no
        inbound faults are set (faulted packets arrive later, from the adapter's own timers)."""
        if self._inbound is None:
            return self.events.packet_received(packet, source)
        if not self._closed:
            self._route(self._lanes[1], self._inbound, source, packet, self._deliver_in)
        return None

    def _route(self, lane: _Lane, dice: _Dice, place: HostPort, packet: bytes,
               now: Deliver) -> None:
        """Deliver each copy of ``packet`` at once, later, or after the next packet."""
        for copy in dice.fate(packet):
            if copy.held:
                self._hold(lane, dice.profile, place, copy.packet)
            elif copy.delay > 0:
                self._later(lane, copy.delay, place, copy.packet)
            else:
                now(place, copy.packet)
                self._release(lane, place)

    def _admit(self) -> bool:
        """Count one more packet held, unless the adapter already holds its limit."""
        if self._in_flight >= self.max_in_flight:
            self._counts["overflow"] += 1
            return False
        self._in_flight += 1
        self._peak = max(self._peak, self._in_flight)
        return True

    def _later(self, lane: _Lane, delay: float, place: HostPort, packet: bytes) -> None:
        if self._admit():
            key = next(self._timer_keys)
            loop = asyncio.get_running_loop()
            self._timers[key] = loop.call_later(delay, self._due, key, lane, place, packet)

    def _due(self, key: int, lane: _Lane, place: HostPort, packet: bytes) -> None:
        del self._timers[key]
        self._in_flight -= 1
        lane.deliver(place, packet)
        self._release(lane, place)

    def _hold(self, lane: _Lane, profile: FaultProfile, place: HostPort, packet: bytes) -> None:
        if not self._admit():
            return
        held = lane.held.get(place)
        if held is None:
            wait = profile.delay + profile.jitter + HOLD_LIMIT
            timer = asyncio.get_running_loop().call_later(wait, self._release, lane, place)
            held = lane.held[place] = _Held(timer)
        held.packets.append(packet)

    def _release(self, lane: _Lane, place: HostPort) -> None:
        """Let the packets held back for ``place`` go, now that another one went first."""
        held = lane.held.pop(place, None)
        if held is None:
            return
        held.timer.cancel()
        self._in_flight -= len(held.packets)
        for packet in held.packets:
            lane.deliver(place, packet)

    def _send_late(self, destination: HostPort, packet: bytes) -> None:
        """Send a packet whose ``send`` call has returned: failures are reported, not raised."""
        try:
            self.inner.send(destination, packet)
        except RelayError as exc:
            self.events.send_failed(destination, exc)

    def _deliver_in(self, source: HostPort, packet: bytes) -> None:
        self.events.packet_received(packet, source)
