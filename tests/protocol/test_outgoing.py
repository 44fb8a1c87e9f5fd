"""A link's outbound door, without an event loop: messages and frames in, packets out.

Each format (plain net-relay packets, sealed ones, Heph's JSON datagrams) is
held to what a receiver reads back from its packets.
"""

from __future__ import annotations

import json

import pytest
from endpoints import KEY, ME, PEER, JsonCodec, Zlib, make_endpoint
from hypothesis import given
from hypothesis import strategies as st

from relay_core.errors import MessageTooLarge
from relay_core.protocol.heph import decode_datagram, encode_datagram
from relay_core.protocol.outgoing import (
    HephDatagrams,
    Outgoing,
    SealedPackets,
    encode_payload,
    outgoing_for,
)
from relay_core.protocol.seal import HELLO, SEALED, KeyRing, Sealer, hello_body
from relay_core.protocol.wire_read import decode_frames, decode_packet

LIMITS = (65536, 1400, 1400)  # max_message_size, batch_size, max_packet_size


def plain() -> Outgoing:
    return outgoing_for(make_endpoint(), JsonCodec(), None, *LIMITS)


def sealed(peer_incarnation: int = PEER) -> SealedPackets:
    out = outgoing_for(make_endpoint(), JsonCodec(), None, *LIMITS,
                       sealer=Sealer(KeyRing({1: KEY}, 1)))
    assert isinstance(out, SealedPackets)
    out.peer_incarnation = peer_incarnation
    return out


def peer_opens(packet: bytes) -> tuple[int, int, list[tuple[str, object]]]:
    """What the peer reads from a sealed packet: sender, sequence, (target, message)s."""
    sender, sequence, body, _ = Sealer(KeyRing({1: KEY}, 1)).open(packet, PEER)
    return sender, sequence, [(f.target, json.loads(f.payload)) for f in decode_frames(body)]


def read_plain(packet: bytes) -> list[tuple[str, object]]:
    return [(f.target, json.loads(f.payload)) for f in decode_packet(packet).frames]


def test_the_formats_are_chosen_by_what_the_link_speaks() -> None:
    endpoint = make_endpoint()
    sealer = Sealer(KeyRing({1: KEY}, 1))
    assert type(outgoing_for(endpoint, JsonCodec(), None, *LIMITS)) is Outgoing
    assert type(outgoing_for(endpoint, JsonCodec(), None, *LIMITS, sealer=sealer)) is SealedPackets
    assert type(outgoing_for(endpoint, JsonCodec(), None, *LIMITS, heph=True)) is HephDatagrams


@given(st.lists(st.tuples(st.sampled_from(["echo", "store"]),
                          st.integers() | st.text(max_size=300)), min_size=1, max_size=40))
def test_plain_packets_carry_every_message_in_order_numbered_by_the_endpoint(
    messages: list[tuple[str, object]],
) -> None:
    out = plain()
    for target, message in messages:
        frame, expanded = out.message(target, message)
        assert expanded == 0
        out.add(frame, expanded)
    packets = out.full_packets() + out.packets()
    assert not out and out.queued_bytes == 0
    assert [m for packet in packets for m in read_plain(packet)] == messages
    headers = [decode_packet(packet) for packet in packets]
    assert [h.incarnation for h in headers] == [ME] * len(packets)
    assert [h.sequence for h in headers] == list(range(1, len(packets) + 1))


def test_a_lone_frame_is_a_packet_of_its_own_only_while_nothing_waits() -> None:
    out = plain()
    frame, _ = out.message("echo", 1)
    packet = out.lone(frame)
    assert packet is not None and read_plain(packet) == [("echo", 1)]
    out.add(frame)
    assert out.lone(frame) is None  # a frame waits: this one goes behind it


def test_sealed_packets_open_only_for_the_peer_incarnation_they_were_sealed_for() -> None:
    out = sealed()
    frame, _ = out.message("echo", "hi")
    assert out.lone(frame) is None  # sealed once per turn, for all its frames
    out.add(frame)
    out.add(out.message("store", 2)[0])
    (packet,) = out.packets()
    assert peer_opens(packet) == (ME, 1, [("echo", "hi"), ("store", 2)])
    with pytest.raises(Exception, match="tag|authentic"):
        Sealer(KeyRing({1: KEY}, 1)).open(packet, PEER + 1)


def test_a_hello_asks_for_the_peers_incarnation_and_only_later_answers_are_news() -> None:
    out = sealed()
    out.add(out.message("echo", 1)[0])
    out.packets()  # sequence 1 went before the hello
    sequence, hello = out.hello()
    assert sequence == 2
    sender, hello_sequence, body, flags = Sealer(KeyRing({1: KEY}, 1)).open(hello, 0)
    assert (sender, hello_sequence, body, flags) == (ME, 2, hello_body(), SEALED | HELLO)
    assert not out.accept_answer(1)  # names a packet sent before the hello
    assert out.accept_answer(2)
    assert not out.accept_answer(2)  # the same answer again: a replay


def test_heph_datagrams_are_one_message_each_and_name_no_actor() -> None:
    out = outgoing_for(make_endpoint(), JsonCodec(), None, *LIMITS, heph=True)
    assert not out.takes_requests
    for number in range(3):
        out.add(out.message("ignored", {"n": number})[0])
    datagrams = out.packets()
    assert [decode_datagram(d, 65536).message for d in datagrams] == [{"n": n} for n in range(3)]
    assert all(out.messages_in(d) == 1 for d in datagrams)
    lone = out.lone(out.message("ignored", [1])[0])
    assert lone is not None and decode_datagram(lone, 65536).message == [1]


def test_a_dropped_packet_counts_the_messages_it_held() -> None:
    for out in (plain(), sealed()):
        for number in range(5):
            out.add(out.message("echo", number)[0])
        (packet,) = out.packets()
        assert out.messages_in(packet) == 5
    sealed_link = sealed()
    assert sealed_link.messages_in(sealed_link.hello()[1]) == 0
    assert plain().messages_in(b"not a packet") == 1
    assert plain().messages_in(encode_datagram("x")) == 1


def test_a_payload_past_the_message_limit_is_refused_before_it_is_compressed() -> None:
    with pytest.raises(MessageTooLarge, match="max_message_size"):
        encode_payload(JsonCodec().encode, Zlib(), "x" * 100, 50)
    payload, compressor, expanded = encode_payload(JsonCodec().encode, Zlib(), "x" * 100, 200)
    assert (compressor, expanded) == ("zlib", 102) and len(payload) < 102


def test_a_frame_no_packet_holds_is_refused() -> None:
    out = outgoing_for(make_endpoint(), JsonCodec(), None, 65536, 200, 200)
    with pytest.raises(MessageTooLarge):
        out.add(out.message("echo", "x" * 400)[0])


@given(st.lists(st.tuples(st.sampled_from(["echo", "store", "echo2"]),
                          st.sampled_from(["", "zstd"])), min_size=1, max_size=12))
def test_a_links_request_encoder_is_the_one_for_that_target_and_compressor(
    calls: list[tuple[str, str]],
) -> None:
    out = plain()
    for target, compressor in calls:
        encoder = out.request_encoder(target, compressor)
        assert (encoder.target, encoder.compressor) == (target, compressor)
        # Equal strings made anew (as a caller's may be) find the same encoder.
        assert out.request_encoder(target.encode().decode(), compressor) is encoder
