"""The endpoint, without an event loop: packets in, events out, every drop counted.

Each test feeds bytes and reads events; time is a variable the test moves.
"""

from __future__ import annotations

import itertools
import json
import zlib

from endpoints import KEY, ME, PEER, Clock, make_endpoint
from hypothesis import given
from hypothesis import strategies as st

from relay_core.observe.stats import Counters
from relay_core.protocol.decoding import FAILED
from relay_core.protocol.endpoint import RESEND_FACTOR, Endpoint, PacketEvents
from relay_core.protocol.events import (
    AnswerReceived,
    AnswerToSend,
    Arrival,
    CancelReceived,
    Event,
    HephMessageReceived,
    MessageReceived,
    ReplyReceived,
    RequestReceived,
    SealedPacketAccepted,
)
from relay_core.protocol.heph import encode_datagram
from relay_core.protocol.heph_route import HephRoute
from relay_core.protocol.seal import (
    ANSWER,
    HELLO,
    SEALED,
    KeyRing,
    Sealer,
    answer_body,
    hello_body,
)
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet

SOURCE = ("127.0.0.1", 9001)


def message_frame(target: str, value: object) -> bytes:
    return encode_frame(Frame(FrameKind.MESSAGE, "json", json.dumps(value).encode(),
                              target=target))


def all_of(events: PacketEvents | None) -> list[Event]:
    taken: list[Event] = []
    while events is not None and (event := events.next()) is not None:
        taken.append(event)
    return taken


def arrive(endpoint: Endpoint, packet: bytes,
           counters: Counters | None = None) -> tuple[list[Event], Arrival]:
    arrival = PacketEvents("udp", SOURCE, counters or Counters())
    return all_of(endpoint.receive(packet, arrival)), arrival


def messages(events: list[Event]) -> list[tuple[str, object]]:
    return [(event.target, event.message) for event in events
            if isinstance(event, MessageReceived)]


def test_a_packets_messages_come_out_decoded_in_frame_order() -> None:
    endpoint = make_endpoint()
    packet = encode_packet(PEER, 1, [message_frame("a", 1), message_frame("b", [2]),
                                     message_frame("a", {"x": 3})])
    events, arrival = arrive(endpoint, packet)
    assert messages(events) == [("a", 1), ("b", [2]), ("a", {"x": 3})]
    assert arrival.counters.frames_received == 3
    assert arrival.counters.messages_received == 3
    assert arrival.incarnation == PEER


def test_requests_replies_and_cancels_come_out_undecoded_with_their_arrival() -> None:
    endpoint = make_endpoint()
    request = Frame(FrameKind.REQUEST, "json", b'"ping"', target="echo", call_id=7,
                    deadline_ms=500, request_id="r1")
    reply = Frame(FrameKind.RESPONSE, "json", b'"pong"', call_id=8, request_id="r2")
    cancel = Frame(FrameKind.CANCEL, "", b"", call_id=9)
    packet = encode_packet(PEER, 1, [encode_frame(request), encode_frame(reply),
                                     encode_frame(cancel)])
    events, arrival = arrive(endpoint, packet)
    assert [type(event) for event in events] == [RequestReceived, ReplyReceived,
                                                  CancelReceived]
    first, second, third = events
    assert isinstance(first, RequestReceived) and first.frame.call_id == 7
    assert endpoint.decode(first.frame, arrival) == "ping"
    assert isinstance(second, ReplyReceived) and endpoint.decode(second.frame, arrival) == "pong"
    assert isinstance(third, CancelReceived) and third.call_id == 9
    assert arrival.resend_left == RESEND_FACTOR * len(packet)


def test_a_packet_seen_before_yields_nothing_and_counts_a_duplicate() -> None:
    endpoint = make_endpoint()
    packet = encode_packet(PEER, 5, [message_frame("a", 1)])
    assert messages(arrive(endpoint, packet)[0]) == [("a", 1)]
    events, arrival = arrive(endpoint, packet)
    assert events == []
    assert arrival.counters.duplicates == 1


def test_a_packet_far_behind_the_window_counts_too_old() -> None:
    endpoint = make_endpoint()
    arrive(endpoint, encode_packet(PEER, 1000, [message_frame("a", 1)]))
    events, arrival = arrive(endpoint, encode_packet(PEER, 1, [message_frame("a", 2)]))
    assert events == []
    assert arrival.counters.too_old == 1


def test_this_nodes_own_packet_sent_back_is_dropped_as_reflected() -> None:
    endpoint = make_endpoint()
    events, arrival = arrive(endpoint, encode_packet(ME, 1, [message_frame("a", 1)]))
    assert events == []
    assert arrival.counters.reflected == 1


def test_a_damaged_packet_is_counted_corrupt_and_garbage_malformed() -> None:
    endpoint = make_endpoint()
    packet = bytearray(encode_packet(PEER, 1, [message_frame("a", 1)]))
    packet[-1] ^= 0xFF
    events, arrival = arrive(endpoint, bytes(packet))
    assert events == [] and arrival.counters.corrupt == 1
    events, arrival = arrive(endpoint, b"\x00garbage")
    assert events == [] and arrival.counters.malformed == 1


@given(st.binary(max_size=200))
def test_no_bytes_make_the_endpoint_raise(data: bytes) -> None:
    endpoint = make_endpoint()
    events, arrival = arrive(endpoint, data)
    counted = (arrival.counters.malformed + arrival.counters.corrupt
               + arrival.counters.unauthenticated + arrival.counters.reflected)
    assert events == [] or counted == 0


def test_an_undecodable_message_is_dropped_and_counted_the_rest_of_the_packet_goes_on() -> None:
    endpoint = make_endpoint()
    broken = encode_frame(Frame(FrameKind.MESSAGE, "json", b"{not json", target="a"))
    events, arrival = arrive(endpoint, encode_packet(PEER, 1, [broken, message_frame("a", 2)]))
    assert messages(events) == [("a", 2)]
    assert arrival.counters.undecodable == 1


def compressed_frame(target: str, size: int) -> bytes:
    payload = json.dumps("x" * size).encode()
    return encode_frame(Frame(FrameKind.MESSAGE, "json", zlib.compress(payload),
                              compressor="zlib", target=target))


def test_a_packets_compressed_frames_share_one_expansion_budget() -> None:
    endpoint = make_endpoint(max_message_size=65536)
    # Each frame alone is within max_message_size; together they pass the packet's budget.
    frames = [compressed_frame("a", 60000) for _ in range(20)]
    events, arrival = arrive(endpoint, encode_packet(PEER, 1, frames))
    delivered = len(messages(events))
    assert delivered == (1 << 20) // 60002  # what fits in MAX_GROUPED_EXPANSION
    assert arrival.counters.over_budget == 20 - delivered


def test_the_decompression_rate_refills_from_the_clock_only_as_time_passes() -> None:
    clock = Clock()
    endpoint = make_endpoint(clock, rate=4 * 70000)  # a burst of one packet's budget
    sequence = 0

    def send_one() -> Counters:
        nonlocal sequence
        sequence += 1
        return arrive(endpoint, encode_packet(PEER, sequence,
                                              [compressed_frame("a", 60000)]))[1].counters

    drawn = 0
    while send_one().decompression_limited == 0:
        drawn += 1
        assert drawn < 100
    assert send_one().decompression_limited == 1  # no time passed: still none
    clock.now += 1.0
    assert send_one().decompression_limited == 0


def arrive_from(endpoint: Endpoint, packet: bytes, source: tuple[str, int],
                scheme: str = "udp") -> tuple[list[Event], Arrival]:
    arrival = PacketEvents(scheme, source, Counters())
    return all_of(endpoint.receive(packet, arrival)), arrival


def test_a_heph_datagram_on_a_heph_listener_is_a_message_for_its_actor_once() -> None:
    endpoint = make_endpoint(heph_target="greeter")
    datagram = encode_datagram({"name": "Heph"})
    events, _ = arrive(endpoint, datagram)
    assert messages(events) == [("greeter", {"name": "Heph"})]
    events, arrival = arrive(endpoint, datagram)
    assert events == [] and arrival.counters.heph_duplicates == 1
    assert arrival.counters.duplicates == 0  # that counter is the sequence window's


def test_a_heph_uuid_is_a_duplicate_only_from_the_source_that_sent_it() -> None:
    # Heph nodes whose uuid generator fell back to its constant seed send the same uuids.
    endpoint = make_endpoint(heph_target="greeter")
    datagram = encode_datagram("same uuid")
    for source in (("127.0.0.1", 9001), ("127.0.0.1", 9002), ("::1", 9001)):
        events, _ = arrive_from(endpoint, datagram, source)
        assert messages(events) == [("greeter", "same uuid")]
    events, arrival = arrive_from(endpoint, datagram, ("127.0.0.1", 9002))
    assert events == [] and arrival.counters.heph_duplicates == 1


def test_a_heph_message_to_a_group_to_all_is_one_event_per_actor_each_with_a_copy() -> None:
    endpoint = make_endpoint(heph_route=HephRoute(("a", "b", "c")))
    events, _ = arrive(endpoint, encode_datagram({"n": [1]}))
    assert messages(events) == [("a", {"n": [1]}), ("b", {"n": [1]}), ("c", {"n": [1]})]
    shared = [event.message for event in events if isinstance(event, MessageReceived)]
    assert all(first is not other and first["n"] is not other["n"]  # type: ignore[index]
               for first, other in itertools.pairwise(shared))


def test_a_heph_message_to_a_group_to_one_goes_to_each_actor_in_turn() -> None:
    endpoint = make_endpoint(heph_route=HephRoute(("a", "b"), to_one=True))
    taken = [messages(arrive(endpoint, encode_datagram(n))[0]) for n in range(5)]
    assert taken == [[("a", 0)], [("b", 1)], [("a", 2)], [("b", 3)], [("a", 4)]]


def test_a_heph_message_with_the_source_is_an_event_of_its_own_kind() -> None:
    endpoint = make_endpoint(heph_route=HephRoute(("a", "b"), with_source=True))
    datagram = encode_datagram("hi")
    events, _ = arrive(endpoint, datagram)
    assert [(type(e), e.target, e.message, e.size) for e in events  # type: ignore[union-attr]
            ] == [(HephMessageReceived, name, "hi", len(datagram)) for name in ("a", "b")]


def sealed_for_me(sequence: int, frames: list[bytes], receiver: int = ME) -> bytes:
    return Sealer(KeyRing({1: KEY}, 1)).seal(PEER, receiver, sequence, b"".join(frames))


def test_a_sealed_packet_is_opened_and_says_it_was_sealed() -> None:
    endpoint = make_endpoint(sealed=True)
    events, arrival = arrive(endpoint, sealed_for_me(1, [message_frame("a", 1)]))
    assert isinstance(events[0], SealedPacketAccepted) and events[0].incarnation == PEER
    assert messages(events) == [("a", 1)]
    assert arrival.sealed


def test_a_plain_packet_where_packets_must_be_sealed_is_unauthenticated() -> None:
    endpoint = make_endpoint(sealed=True)
    events, arrival = arrive(endpoint, encode_packet(PEER, 1, [message_frame("a", 1)]))
    assert events == [] and arrival.counters.unauthenticated == 1


def test_a_hello_is_answered_within_the_sources_budget_per_second() -> None:
    clock = Clock()
    endpoint = make_endpoint(clock, sealed=True)
    sealer = Sealer(KeyRing({1: KEY}, 1))
    answers = []
    counters = Counters()
    for sequence in range(1, 12):
        hello = sealer.seal(PEER, 0, sequence, hello_body(), SEALED | HELLO)
        events, _ = arrive(endpoint, hello, counters)
        answers += [event for event in events if isinstance(event, AnswerToSend)]
    assert len(answers) == 8
    assert counters.handshake_answers_limited == 3
    opened = sealer.open(answers[0].packet, PEER)
    assert opened[0] == ME and opened[3] == SEALED | ANSWER
    clock.now += 1.0
    hello = sealer.seal(PEER, 0, 99, hello_body(), SEALED | HELLO)
    assert any(isinstance(event, AnswerToSend) for event in arrive(endpoint, hello)[0])


def test_an_answer_naming_a_packet_this_node_never_sent_is_ignored() -> None:
    endpoint = make_endpoint(sealed=True)
    sealer = Sealer(KeyRing({1: KEY}, 1))
    answer = sealer.seal(PEER, ME, 1, answer_body(5), SEALED | ANSWER)
    assert arrive(endpoint, answer)[0] == []
    for _ in range(5):
        endpoint.next_sequence()
    events = arrive(endpoint, sealer.seal(PEER, ME, 2, answer_body(5), SEALED | ANSWER))[0]
    assert len(events) == 1 and isinstance(events[0], AnswerReceived)
    assert (events[0].sender, events[0].answered) == (PEER, 5)


def test_a_packet_sealed_for_a_gone_incarnation_is_answered_and_dropped() -> None:
    endpoint = make_endpoint(sealed=True)
    events, arrival = arrive(endpoint, sealed_for_me(1, [message_frame("a", 1)],
                                                     receiver=0x9999))
    assert [type(event) for event in events] == [AnswerToSend]
    assert arrival.counters.unauthenticated == 1


def test_a_packet_whose_events_stop_mid_way_goes_on_with_the_rest_in_order() -> None:
    endpoint = make_endpoint()
    frames = [message_frame("a", n) for n in range(5)]
    arrival = PacketEvents("udp", SOURCE, Counters())
    events = endpoint.receive(encode_packet(PEER, 1, frames), arrival)
    assert events is not None
    taken = [events.next(), events.next()]
    # Another packet is handled meanwhile: the stopped one keeps its own state.
    assert messages(arrive(endpoint, encode_packet(PEER, 2, [message_frame("b", 9)]))[0]) \
        == [("b", 9)]
    assert messages([event for event in taken if event is not None] + all_of(events)) \
        == [("a", n) for n in range(5)]


def test_the_decoder_refuses_an_oversize_plain_payload() -> None:
    endpoint = make_endpoint(max_message_size=10)
    arrival = Arrival("udp", SOURCE, Counters())
    frame = Frame(FrameKind.REQUEST, "json", b'"' + b"x" * 20 + b'"', target="a", call_id=1)
    assert endpoint.decode(frame, arrival) is FAILED
    assert arrival.counters.oversize == 1
