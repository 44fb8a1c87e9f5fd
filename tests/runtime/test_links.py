"""The node's table of links: what a lookup answers, whatever was added or dropped before.

The table answers a repeated lookup of the same source from a one-entry memo; these
tests hold it to the answers of a plain dict through any mix of changes.
"""

from __future__ import annotations

from endpoints import make_endpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay_codecs import MsgpackCodec
from relay_core.observe.stats import Counters
from relay_core.protocol.outgoing import Outgoing
from relay_core.runtime.links import LinkKey, LinkTable, PeerLink
from relay_transports import UdpTransport

KEYS = st.sampled_from([("udp", "127.0.0.1", 7000), ("udp", "127.0.0.1", 7001),
                        ("udp", "127.0.0.2", 7000), ("tcp", "127.0.0.1", 7000)])
ENDPOINT = make_endpoint()
STEPS = st.lists(st.tuples(st.sampled_from(["add", "add pinned", "discard", "find"]), KEYS),
                 max_size=40)


class _NoEvents:
    def packet_received(self, packet: bytes, source: tuple[str, int]) -> None:
        raise AssertionError("no packet is received in these tests")

    def send_failed(self, destination: tuple[str, int], error: Exception) -> None:
        raise AssertionError("nothing is sent in these tests")

    def packets_unsent(self, destination: tuple[str, int], packets: object, reason: str) -> None:
        raise AssertionError("nothing is sent in these tests")

    def input_malformed(self, source: tuple[str, int], error: Exception) -> None:
        raise AssertionError("no packet is received in these tests")


def new_link(transport: UdpTransport, label: str, *, pinned: bool) -> PeerLink:
    out = Outgoing(ENDPOINT, MsgpackCodec(), None, 65536, 1400, 1400)
    return PeerLink(transport=transport, label=label, out=out, counters=Counters(),
                    pinned=pinned)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_find_answers_as_the_table_holds_it_through_any_changes(
    steps: list[tuple[str, LinkKey]],
) -> None:
    transport = UdpTransport(_NoEvents())  # type: ignore[arg-type]
    table = LinkTable(max_transient=2)  # small: adds evict unpinned links
    for number, (step, key) in enumerate(steps):
        if step == "discard":
            table.discard(key)
        elif step.startswith("add"):
            table.discard(key)  # as the dispatcher replaces a link
            link = new_link(transport, f"link {number}", pinned=step == "add pinned")
            table.add(key, link)
        for probe in (key, ("udp", "127.0.0.1", 7000)):
            assert table.find(*probe) is table.get(probe)
        scheme, host, port = key
        # A source's address arrives as new strings with each packet: equal, not identical.
        assert table.find(scheme, host.encode().decode(), port) is table.get(key)


def test_a_replaced_link_is_found_not_its_predecessor() -> None:
    transport = UdpTransport(_NoEvents())  # type: ignore[arg-type]
    table = LinkTable(max_transient=8)
    first, second = (new_link(transport, name, pinned=False) for name in ("first", "second"))
    table.add(("udp", "127.0.0.1", 7000), first)
    assert table.find("udp", "127.0.0.1", 7000) is first
    table.discard(("udp", "127.0.0.1", 7000))
    assert table.find("udp", "127.0.0.1", 7000) is None
    table.add(("udp", "127.0.0.1", 7000), second)
    assert table.find("udp", "127.0.0.1", 7000) is second
