"""The fault adapter on its own: profiles, config tables, and what it does to packets.

Most tests wrap a recording fake transport, so every decision can be checked
packet by packet; one runs over real UDP loopback. Seeded profiles make every
run the same. Waits are on events (a packet arriving), bounded by a generous
limit; nothing depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_core import (
    ConfigError,
    HostPort,
    MessageTooLarge,
    NodeConfig,
    Transport,
    TransportError,
    TransportEvents,
)
from relay_core.faults.adapter import (
    FAULT_COUNTERS,
    FaultProfile,
    FaultyTransport,
    split_fault_options,
)
from relay_transports import UdpTransport

WAIT_LIMIT = 20.0
HERE: HostPort = ("127.0.0.1", 1000)
THERE: HostPort = ("127.0.0.1", 2000)
ELSEWHERE: HostPort = ("127.0.0.1", 3000)


class FakeTransport(Transport):
    """Records what it is asked to send; ``arrive`` plays a packet coming in."""

    scheme = "fake"
    reliable = True

    def __init__(self, events: TransportEvents) -> None:
        super().__init__(events)
        self.max_packet_size = 1000
        self.batch_size = 500
        self.sent: list[tuple[HostPort, bytes]] = []
        self.refuse: TransportError | None = None
        self.closed = False

    async def listen(self, host: str, port: int) -> HostPort:
        return (host, port or 1000)

    async def prepare(self, host: str, port: int,
                      options: Mapping[str, object] | None = None) -> HostPort:
        return (host, port)

    def send(self, destination: HostPort, packet: bytes) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.sent.append((destination, packet))

    async def close(self) -> None:
        self.closed = True

    def arrive(self, packet: bytes, source: HostPort = THERE) -> None:
        self.events.packet_received(packet, source)

    def packets(self) -> list[bytes]:
        return [packet for _, packet in self.sent]


class Recorder:
    """TransportEvents that keeps what the adapter hands to the node."""

    def __init__(self) -> None:
        self.packets: list[tuple[bytes, HostPort]] = []
        self.failures: list[tuple[HostPort | None, BaseException]] = []

    def packet_received(self, packet: bytes, source: HostPort) -> None:
        self.packets.append((packet, source))

    def send_failed(self, destination: HostPort | None, error: BaseException) -> None:
        self.failures.append((destination, error))

    def packets_unsent(self, destination: HostPort, packets: list[bytes], reason: str) -> None:
        self.failures.append((destination, TransportError(f"{len(packets)} unsent: {reason}")))

    def input_malformed(self, source: HostPort, error: BaseException) -> None:
        self.failures.append((source, error))


def faulty(outbound: FaultProfile | None = None, inbound: FaultProfile | None = None,
           **options: int) -> tuple[FaultyTransport, FakeTransport, Recorder]:
    events = Recorder()
    adapter = FaultyTransport.wrap(events, FakeTransport, outbound=outbound, inbound=inbound,
                                   **options)
    assert isinstance(adapter.inner, FakeTransport)
    return adapter, adapter.inner, events


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_LIMIT):
        while not condition():
            await asyncio.sleep(0.001)


def numbered(count: int) -> list[bytes]:
    return [index.to_bytes(4, "big") for index in range(count)]


def differing_bits(one: bytes, other: bytes) -> int:
    return sum((a ^ b).bit_count() for a, b in zip(one, other, strict=True))


# --- profiles and config tables ------------------------------------------------------------


def test_a_default_profile_does_nothing_and_any_fault_makes_it_active() -> None:
    assert not FaultProfile().active
    assert not FaultProfile(seed=3).active
    for name in ("drop", "duplicate", "reorder", "delay", "jitter", "corrupt"):
        assert FaultProfile.from_mapping({name: 0.5}, "test").active, name


def test_a_fault_table_builds_the_profile_it_describes() -> None:
    table = {"drop": 0.05, "duplicate": 1, "reorder": 0.1, "delay": 0.002, "jitter": 0,
             "corrupt": 0.05, "seed": 7}
    profile = FaultProfile.from_mapping(table, "peers.beta.fault")
    assert profile == FaultProfile(0.05, 1.0, 0.1, 0.002, 0.0, 0.05, 7)
    assert isinstance(profile.duplicate, float)


def test_an_unknown_key_in_a_fault_table_is_named_with_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        FaultProfile.from_mapping({"dorp": 0.1}, "peers.beta.fault")
    text = str(caught.value)
    assert "[peers.beta.fault]" in text and "'dorp'" in text
    assert "drop, duplicate, reorder, delay, jitter, corrupt, seed" in text
    assert "did you mean 'drop'?" in text


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("drop", 1.5, "from 0 to 1"),
    ("duplicate", -0.1, "from 0 to 1"),
    ("corrupt", math.nan, "from 0 to 1"),
    ("reorder", True, "from 0 to 1"),
    ("drop", "0.1", "from 0 to 1"),
    ("delay", -1, ">= 0"),
    ("jitter", math.inf, "finite"),
    ("seed", 1.5, "an integer"),
    ("seed", False, "an integer"),
])
def test_a_bad_fault_value_is_refused_naming_key_value_and_what_is_allowed(
    key: str, value: object, allowed: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        FaultProfile.from_mapping({key: value}, "listen.udp.fault")
    text = str(caught.value)
    assert text.startswith("[listen.udp.fault]")
    assert f"{key} = {value!r}" in text and allowed in text
    with pytest.raises(ConfigError, match=f"FaultProfile: {key} ="):
        FaultProfile(**{key: value})  # type: ignore[arg-type]


def test_splitting_options_takes_out_the_fault_table_and_keeps_the_rest() -> None:
    profile, rest = split_fault_options({"ca": "ca.pem", "fault": {"drop": 0.5}}, "peers.beta")
    assert profile == FaultProfile(drop=0.5)
    assert rest == {"ca": "ca.pem"}
    assert split_fault_options({"ca": "ca.pem"}, "peers.beta") == (None, {"ca": "ca.pem"})


def test_a_fault_option_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[peers.beta\] fault = 0.5: must be a table"):
        split_fault_options({"fault": 0.5}, "peers.beta")


def test_fault_tables_in_a_config_file_reach_the_peer_and_listener_options() -> None:
    config = NodeConfig.from_toml("""
        [listen.udp]
        port = 0
        [listen.udp.fault]
        drop = 0.1
        [peers.beta]
        address = "udp://127.0.0.1:9002"
        [peers.beta.fault]
        duplicate = 0.3
        seed = 7
    """)
    inbound, _ = split_fault_options(config.listen["udp"].options, "listen.udp")
    outbound, _ = split_fault_options(config.peers["beta"].options, "peers.beta")
    assert inbound == FaultProfile(drop=0.1)
    assert outbound == FaultProfile(duplicate=0.3, seed=7)


def test_a_bad_fault_table_in_a_config_file_names_its_table() -> None:
    config = NodeConfig.from_toml("""
        [peers.beta]
        address = "udp://127.0.0.1:9002"
        fault = { drop = 2 }
    """)
    with pytest.raises(ConfigError, match=r"\[peers.beta.fault\] drop = 2"):
        split_fault_options(config.peers["beta"].options, "peers.beta")


# --- the adapter passes for the transport it wraps -----------------------------------------


def test_the_adapter_reports_the_wrapped_transports_scheme_reliability_and_sizes() -> None:
    adapter, _, _ = faulty()
    assert (adapter.scheme, adapter.reliable) == ("fake", True)
    assert (adapter.max_packet_size, adapter.batch_size) == (1000, 500)
    assert isinstance(adapter, Transport)


async def test_without_faults_packets_pass_both_ways_untouched() -> None:
    adapter, inner, events = faulty()
    assert await adapter.listen("127.0.0.1", 0) == ("127.0.0.1", 1000)
    destination = await adapter.prepare(*THERE)
    adapter.send(destination, b"out")
    inner.arrive(b"in")
    assert inner.sent == [(THERE, b"out")]
    assert events.packets == [(b"in", THERE)]
    assert adapter.stats() == {**dict.fromkeys(FAULT_COUNTERS, 0), "in_flight": 0,
                               "peak_in_flight": 0}


def test_failures_the_wrapped_transport_reports_reach_the_node() -> None:
    _, inner, events = faulty(inbound=FaultProfile(drop=1.0))
    error = TransportError("unreachable")
    inner.events.send_failed(THERE, error)
    assert events.failures == [(THERE, error)]


# --- each fault -----------------------------------------------------------------------------


def test_with_drop_one_every_packet_is_lost_and_counted() -> None:
    adapter, inner, _ = faulty(FaultProfile(drop=1.0))
    for packet in numbered(10):
        adapter.send(THERE, packet)
    assert inner.sent == []
    assert adapter.stats()["dropped"] == 10


@settings(max_examples=50)
@given(packet=st.binary(min_size=1, max_size=200), seed=st.integers())
def test_a_corrupted_packet_differs_from_the_original_in_exactly_one_bit(
    packet: bytes, seed: int
) -> None:
    adapter, inner, _ = faulty(FaultProfile(corrupt=1.0, seed=seed))
    adapter.send(THERE, packet)
    [(_, damaged)] = inner.sent
    assert len(damaged) == len(packet)
    assert differing_bits(damaged, packet) == 1
    assert adapter.stats()["corrupted"] == 1


def test_an_empty_packet_cannot_be_corrupted_and_passes_as_it_is() -> None:
    adapter, inner, _ = faulty(FaultProfile(corrupt=1.0))
    adapter.send(THERE, b"")
    assert inner.sent == [(THERE, b"")]
    assert adapter.stats()["corrupted"] == 0


async def test_with_duplicate_one_every_packet_arrives_twice_the_copy_later() -> None:
    adapter, inner, _ = faulty(FaultProfile(duplicate=1.0))
    packets = numbered(5)
    for packet in packets:
        adapter.send(THERE, packet)
    assert inner.packets() == packets  # the originals at once; the copies are on their way
    await until(lambda: len(inner.sent) == 10)
    assert inner.packets() == packets + packets
    assert adapter.stats()["duplicated"] == 5


async def test_a_held_back_packet_goes_right_after_the_next_one_to_its_destination() -> None:
    adapter, inner, _ = faulty(FaultProfile(reorder=1.0))
    adapter.send(THERE, b"first")
    adapter.send(ELSEWHERE, b"elsewhere")
    assert inner.sent == []
    adapter.set_destination_profile(THERE, FaultProfile())  # the next packet is not held
    adapter.send(THERE, b"second")
    assert inner.sent == [(THERE, b"second"), (THERE, b"first")]
    assert adapter.stats()["reordered"] == 2


async def test_a_held_back_packet_with_no_packet_after_it_still_arrives() -> None:
    adapter, inner, _ = faulty(FaultProfile(reorder=1.0))
    adapter.send(THERE, b"alone")
    await until(lambda: bool(inner.sent))
    assert inner.sent == [(THERE, b"alone")]
    assert adapter.in_flight == 0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32), rate=st.floats(0.05, 0.95))
def test_reordering_only_lets_later_packets_overtake_the_held_ones(seed: int, rate: float) -> None:
    async def run() -> tuple[list[bytes], int]:
        adapter, inner, _ = faulty(FaultProfile(reorder=rate, seed=seed))
        for packet in numbered(100):
            adapter.send(THERE, packet)
        adapter.set_destination_profile(THERE, FaultProfile())
        adapter.send(THERE, b"last")  # sorts after every numbered packet; frees the held ones
        return inner.packets(), adapter.stats()["reordered"]

    arrived, reordered = asyncio.run(run())
    assert sorted(arrived) == [*numbered(100), b"last"]
    overtaken = [p for index, p in enumerate(arrived) if any(q > p for q in arrived[:index])]
    assert len(overtaken) == reordered


async def test_a_delayed_packet_is_not_sent_at_once_but_arrives() -> None:
    adapter, inner, _ = faulty(FaultProfile(delay=0.01))
    adapter.send(THERE, b"late")
    assert inner.sent == [] and adapter.in_flight == 1
    await until(lambda: bool(inner.sent))
    assert inner.sent == [(THERE, b"late")]
    assert adapter.stats()["delayed"] == 1 and adapter.in_flight == 0


async def test_jitter_never_loses_a_packet() -> None:
    adapter, inner, _ = faulty(FaultProfile(jitter=0.005, seed=1))
    packets = numbered(50)
    for packet in packets:
        adapter.send(THERE, packet)
    await until(lambda: len(inner.sent) == 50)
    assert sorted(inner.packets()) == packets
    assert 0 < adapter.stats()["delayed"] <= 50


async def test_inbound_faults_act_on_received_packets() -> None:
    adapter, inner, events = faulty(inbound=FaultProfile(drop=1.0))
    inner.arrive(b"lost")
    assert events.packets == []
    adapter.send(THERE, b"out")
    assert inner.sent == [(THERE, b"out")]  # outbound has no faults
    assert adapter.stats()["dropped"] == 1


async def test_inbound_duplicates_reach_the_node_twice() -> None:
    _, inner, events = faulty(inbound=FaultProfile(duplicate=1.0))
    inner.arrive(b"twice", ELSEWHERE)
    await until(lambda: len(events.packets) == 2)
    assert events.packets == [(b"twice", ELSEWHERE)] * 2


def test_a_destination_profile_replaces_the_outbound_one_for_that_destination_only() -> None:
    adapter, inner, _ = faulty(FaultProfile(drop=1.0))
    adapter.set_destination_profile(THERE, FaultProfile(corrupt=1.0))
    adapter.send(THERE, b"\x00")
    adapter.send(ELSEWHERE, b"\x00")
    [(destination, damaged)] = inner.sent
    assert destination == THERE and differing_bits(damaged, b"\x00") == 1
    adapter.set_destination_profile(THERE, None)
    adapter.send(THERE, b"\x00")
    assert len(inner.sent) == 1


def test_a_destination_profile_can_be_given_at_construction() -> None:
    events = Recorder()
    adapter = FaultyTransport(events, FakeTransport,
                              per_destination={THERE: FaultProfile(drop=1.0)})
    adapter.send(THERE, b"lost")
    adapter.send(ELSEWHERE, b"kept")
    assert isinstance(adapter.inner, FakeTransport)
    assert adapter.inner.sent == [(ELSEWHERE, b"kept")]


# --- reproducibility -------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(), packets=st.lists(st.binary(min_size=1, max_size=64), max_size=40))
def test_the_same_seed_makes_the_same_decisions_for_the_same_packets(
    seed: int, packets: list[bytes]
) -> None:
    async def run() -> tuple[list[bytes], dict[str, int]]:
        profile = FaultProfile(drop=0.2, duplicate=0.3, reorder=0.2, corrupt=0.2, seed=seed)
        adapter, inner, _ = faulty(profile)
        for packet in packets:
            adapter.send(THERE, packet)
        await until(lambda: adapter.in_flight == 0)
        return inner.packets(), adapter.stats()

    assert asyncio.run(run()) == asyncio.run(run())


def test_different_seeds_make_different_decisions() -> None:
    def dropped(seed: int) -> list[bytes]:
        adapter, inner, _ = faulty(FaultProfile(drop=0.5, seed=seed))
        for packet in numbered(64):
            adapter.send(THERE, packet)
        return inner.packets()

    assert dropped(1) == dropped(1)
    assert dropped(1) != dropped(2)


# --- bounds, errors and closing --------------------------------------------------------------


async def test_the_adapter_holds_at_most_max_in_flight_packets_and_counts_the_rest() -> None:
    adapter, inner, _ = faulty(FaultProfile(delay=3600.0), max_in_flight=5)
    for packet in numbered(20):
        adapter.send(THERE, packet)
    stats = adapter.stats()
    assert (stats["in_flight"], stats["peak_in_flight"], stats["overflow"]) == (5, 5, 15)
    await adapter.close()
    assert adapter.in_flight == 0 and inner.sent == []


def test_a_negative_in_flight_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_in_flight = -1: must be an integer >= 0"):
        faulty(max_in_flight=-1)


async def test_closing_cancels_every_pending_packet_and_closes_the_wrapped_transport() -> None:
    adapter, inner, events = faulty(FaultProfile(delay=0.01, reorder=0.5, duplicate=0.5),
                                    inbound=FaultProfile(delay=0.01))
    for packet in numbered(20):
        adapter.send(THERE, packet)
        inner.arrive(packet)
    await adapter.close()
    await adapter.close()  # closing twice is harmless
    await asyncio.sleep(0.1)  # ten times the delay: a timer left running would have fired
    assert inner.sent == [] and events.packets == []
    assert inner.closed and adapter.in_flight == 0


async def test_sending_after_close_is_a_transport_error() -> None:
    adapter, _, _ = faulty(FaultProfile(drop=1.0))
    await adapter.close()
    with pytest.raises(TransportError, match="closed"):
        adapter.send(THERE, b"x")


def test_an_oversized_packet_is_refused_at_once_even_if_it_would_be_dropped() -> None:
    adapter, _, _ = faulty(FaultProfile(drop=1.0))
    with pytest.raises(MessageTooLarge, match="1001 bytes exceeds the limit of 1000"):
        adapter.send(THERE, b"x" * 1001)


def test_a_failure_of_an_undelayed_send_is_raised_as_the_transport_raises_it() -> None:
    adapter, inner, _ = faulty(FaultProfile(corrupt=1.0))
    inner.refuse = TransportError("no route")
    with pytest.raises(TransportError, match="no route"):
        adapter.send(THERE, b"x")


async def test_a_failure_of_a_delayed_send_is_reported_not_raised() -> None:
    adapter, inner, events = faulty(FaultProfile(delay=0.001))
    inner.refuse = TransportError("no route")
    adapter.send(THERE, b"x")
    await until(lambda: bool(events.failures))
    assert events.failures == [(THERE, inner.refuse)]


# --- over a real transport ---------------------------------------------------------------------


async def test_over_udp_loopback_every_datagram_arrives_twice_with_duplicate_one() -> None:
    receiver_events = Recorder()
    receiver = UdpTransport(receiver_events)
    sender = FaultyTransport.wrap(Recorder(), UdpTransport, outbound=FaultProfile(duplicate=1.0))
    try:
        destination = await sender.prepare(*await receiver.listen("127.0.0.1", 0))
        assert sender.scheme == "udp" and not sender.reliable
        for packet in numbered(10):
            sender.send(destination, packet)
        await until(lambda: len(receiver_events.packets) == 20)
    finally:
        await sender.close()
        await receiver.close()
    arrived = sorted(packet for packet, _ in receiver_events.packets)
    assert arrived == sorted(numbered(10) * 2)


async def test_over_a_stream_transport_faults_act_on_whole_packets_and_framing_holds() -> None:
    tcp = pytest.importorskip("relay_transports._tcp")
    receiver_events = Recorder()
    receiver = tcp.TcpTransport(receiver_events)
    profile = FaultProfile(drop=0.3, duplicate=0.3, reorder=0.2, seed=5)
    sender = FaultyTransport.wrap(Recorder(), tcp.TcpTransport, outbound=profile)
    packets = [index.to_bytes(4, "big") * (index + 1) for index in range(100)]
    try:
        destination = await sender.prepare(*await receiver.listen("127.0.0.1", 0))
        assert sender.reliable
        for packet in packets:
            sender.send(destination, packet)
        stats = sender.stats()
        expected = len(packets) - stats["dropped"] + stats["duplicated"]
        await until(lambda: len(receiver_events.packets) == expected)
    finally:
        await sender.close()
        await receiver.close()
    arrived = [packet for packet, _ in receiver_events.packets]
    assert set(arrived) <= set(packets)  # whole packets only: the stream framing is intact
    assert 0 < stats["dropped"] and len(set(arrived)) == len(packets) - stats["dropped"]
