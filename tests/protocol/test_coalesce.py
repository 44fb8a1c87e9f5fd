"""Coalescing: frames for one destination leave in order, in packets that fit."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay_core import ConfigError, MessageTooLarge
from relay_core.protocol.coalesce import MAX_GROUPED_EXPANSION, UNKNOWN_EXPANSION, Coalescer
from relay_core.protocol.wire import PACKET_HEADER_SIZE, encode_packet

RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = PACKET_HEADER_SIZE


def frame(size: int, tag: int = 0) -> bytes:
    return bytes([tag % 256]) * size


def test_nothing_is_pending_until_a_frame_is_added() -> None:
    coalescer = Coalescer(100, 200)
    assert not coalescer
    assert coalescer.drain() == []
    coalescer.add(frame(10))
    assert coalescer


def test_draining_hands_over_the_frames_and_forgets_them() -> None:
    coalescer = Coalescer(100, 200)
    coalescer.add(frame(10, 1))
    coalescer.add(frame(10, 2))
    assert coalescer.drain() == [[frame(10, 1), frame(10, 2)]]
    assert not coalescer
    assert coalescer.drain() == []


def test_frames_share_a_packet_up_to_exactly_the_batch_size() -> None:
    coalescer = Coalescer(HEADER + 100, 1000)
    for tag in range(4):
        coalescer.add(frame(25, tag))
    coalescer.add(frame(1, 4))
    assert coalescer.drain() == [[frame(25, t) for t in range(4)], [frame(1, 4)]]


def test_a_frame_too_big_for_a_batch_travels_alone_in_order() -> None:
    coalescer = Coalescer(HEADER + 50, HEADER + 500)
    coalescer.add(frame(10, 1))
    coalescer.add(frame(400, 2))
    coalescer.add(frame(10, 3))
    assert coalescer.drain() == [[frame(10, 1)], [frame(400, 2)], [frame(10, 3)]]


def test_a_frame_no_packet_could_carry_is_refused_at_once() -> None:
    largest = HEADER + 500
    coalescer = Coalescer(HEADER + 50, largest)
    coalescer.add(frame(10))
    coalescer.add(frame(500))  # exactly the largest packet
    with pytest.raises(MessageTooLarge, match=f"exceeds the limit of {largest} bytes") as caught:
        coalescer.add(frame(501))
    assert (caught.value.size, caught.value.limit) == (largest + 1, largest)
    assert coalescer.drain() == [[frame(10)], [frame(500)]]


@pytest.mark.parametrize(("batch_size", "max_packet_size"), [(HEADER, 100), (0, 100), (101, 100)])
def test_a_batch_size_must_fit_a_header_and_the_largest_packet(
    batch_size: int, max_packet_size: int
) -> None:
    with pytest.raises(ConfigError, match=f"batch_size {batch_size} must be above"):
        Coalescer(batch_size, max_packet_size)


@RELAXED
@given(
    st.integers(HEADER + 1, 600),
    st.integers(0, 600),
    st.lists(st.lists(st.integers(0, 700), max_size=30), max_size=4),
)
def test_any_frames_leave_in_order_in_fitting_greedy_packets(
    batch_size: int, extra: int, rounds: list[list[int]]
) -> None:
    max_packet_size = batch_size + extra
    coalescer = Coalescer(batch_size, max_packet_size)
    for sizes in rounds:  # one list per event-loop turn
        sent = []
        for tag, size in enumerate(sizes):
            if HEADER + size <= max_packet_size:
                sent.append(frame(size, tag))
                coalescer.add(sent[-1])
            else:
                with pytest.raises(MessageTooLarge):
                    coalescer.add(frame(size, tag))
        groups = coalescer.drain()
        assert [f for group in groups for f in group] == sent
        for group in groups:
            packet = encode_packet(1, 1, group)
            assert len(packet) <= batch_size or (len(group) == 1 and len(packet) <= max_packet_size)
        for group, following in itertools.pairwise(groups):
            # Greedy: a packet is closed only when the next frame would not fit in it.
            assert HEADER + sum(map(len, group)) + len(following[0]) > batch_size


def test_add_reports_a_complete_packet_and_take_full_leaves_the_filling_one() -> None:
    coalescer = Coalescer(HEADER + 100, HEADER + 500)
    assert coalescer.add(frame(60)) is False
    assert coalescer.add(frame(60)) is True  # the first packet is complete
    full = coalescer.take_full()
    assert [len(group) for group in full] == [1]
    assert [len(group) for group in coalescer.drain()] == [1]


@RELAXED
@given(st.lists(st.integers(0, 300), max_size=4), st.integers(0, 400), st.booleans())
def test_a_frame_may_leave_alone_only_when_nothing_waits_and_it_fits(
    waiting: list[int], size: int, drained: bool
) -> None:
    max_packet_size = HEADER + 300
    coalescer = Coalescer(HEADER + 100, max_packet_size)
    for tag, waiting_size in enumerate(waiting):
        coalescer.add(frame(waiting_size, tag))
    if drained:
        coalescer.drain()
    nothing_waits = drained or not waiting
    fits = HEADER + size <= max_packet_size
    assert coalescer.takes_alone(frame(size)) is (nothing_waits and fits)
    if nothing_waits and fits:  # what adding and draining would have made of it
        coalescer.add(frame(size, 9))
        assert coalescer.drain() == [[frame(size, 9)]]


# -- what a packet's frames expand to: the receiver's per-packet budget -------------


def test_compressed_frames_share_a_packet_only_while_their_expansion_fits_the_budget() -> None:
    coalescer = Coalescer(HEADER + 1000, HEADER + 1000, max_expanded=1000)
    for tag in range(3):
        coalescer.add(frame(10, tag), 400)  # ten bytes that decompress to 400
    assert coalescer.drain() == [[frame(10, 0), frame(10, 1)], [frame(10, 2)]]


def test_a_frame_expanding_past_the_budget_shares_no_packet_with_compressed_frames() -> None:
    coalescer = Coalescer(HEADER + 1000, HEADER + 1000, max_expanded=1000)
    coalescer.add(frame(10, 1), 1)
    coalescer.add(frame(10, 2), 5000)  # a frame alone may expand to max_message_size
    coalescer.add(frame(10, 3), 1)
    assert coalescer.drain() == [[frame(10, 1)], [frame(10, 2)], [frame(10, 3)]]


def test_a_frame_of_unknown_expansion_shares_no_packet_with_compressed_frames() -> None:
    coalescer = Coalescer(HEADER + 1000, HEADER + 1000, max_expanded=1000)
    coalescer.add(frame(10, 1), 1)
    coalescer.add(frame(10, 2), UNKNOWN_EXPANSION)
    coalescer.add(frame(10, 3), 1)
    assert coalescer.drain() == [[frame(10, 1)], [frame(10, 2)], [frame(10, 3)]]


def test_uncompressed_frames_weigh_nothing_against_the_budget() -> None:
    # Their bytes are what the receiver holds, and the packet's size bounds them.
    coalescer = Coalescer(HEADER + 1000, HEADER + 1000, max_expanded=50)
    for tag in range(3):
        coalescer.add(frame(30, tag))
    coalescer.add(frame(10, 3), 50)
    assert [len(group) for group in coalescer.drain()] == [4]


def test_by_default_a_packet_expands_to_at_most_the_wire_rules_bytes() -> None:
    coalescer = Coalescer(HEADER + 1000, HEADER + 1000)
    for tag in range(3):
        coalescer.add(frame(10, tag), MAX_GROUPED_EXPANSION // 2)
    assert [len(group) for group in coalescer.drain()] == [2, 1]


@RELAXED
@given(st.integers(1, 3000), st.lists(st.integers(0, 2000), max_size=40))
def test_no_packet_of_several_compressed_frames_expands_past_the_budget(
    budget: int, expansions: list[int]
) -> None:
    coalescer = Coalescer(HEADER + 1000, HEADER + 1000, max_expanded=budget)
    sent = [frame(10, tag) for tag in range(len(expansions))]
    weight = dict(zip(map(id, sent), expansions, strict=True))
    for item, expanded in zip(sent, expansions, strict=True):
        coalescer.add(item, expanded)
    groups = coalescer.drain()
    assert [f for group in groups for f in group] == sent
    for group in groups:
        compressed = [weight[id(item)] for item in group if weight[id(item)]]
        # Past the budget only for one compressed frame, which may expand to a whole message.
        assert len(compressed) <= 1 or sum(compressed) <= budget
