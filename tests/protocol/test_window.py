"""The duplicate window: each packet of a sender is accepted once, memory stays bounded.

The property tests compare against a model that remembers every number ever
seen, which is what the window would be with unbounded memory, restricted to the
numbers the window can still judge.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from relay_core import ConfigError
from relay_core.protocol.window import DuplicateFilter, ReplayWindow, Verdict

RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
U64 = 2**64 - 1
ACCEPTED, DUPLICATE, TOO_OLD = Verdict.ACCEPTED, Verdict.DUPLICATE, Verdict.TOO_OLD


@dataclass
class ModelWindow:
    """A window with perfect memory: the verdicts the real one must give."""

    size: int
    seen: set[int] = field(default_factory=set)
    highest: int = 0

    def check(self, sequence: int) -> Verdict:
        if sequence < 1 or sequence <= self.highest - self.size:
            return TOO_OLD
        if sequence in self.seen:
            return DUPLICATE
        self.seen.add(sequence)
        self.highest = max(self.highest, sequence)
        return ACCEPTED


# Sequence numbers that exercise every edge: small ones that collide, numbers near
# the window's edge, huge jumps, and the top of the u64 range.
SEQUENCES = st.one_of(
    st.integers(0, 300),
    st.integers(2**63 - 200, 2**63 + 200),
    st.integers(U64 - 300, U64),
    st.integers(0, U64),
)


# --- one sender -----------------------------------------------------------------------


def test_a_new_window_accepts_its_first_packet_whatever_its_number() -> None:
    for first in (1, 2, 5000, 2**63, U64):
        assert ReplayWindow().check(first) is ACCEPTED


def test_a_packet_is_accepted_once_then_is_a_duplicate() -> None:
    window = ReplayWindow()
    assert [window.check(1), window.check(1), window.check(1)] == [ACCEPTED, DUPLICATE, DUPLICATE]


def test_packets_out_of_order_within_the_window_are_accepted_once_each() -> None:
    window = ReplayWindow(64)
    assert [window.check(s) for s in (10, 3, 7, 3, 10, 9)] == [
        ACCEPTED, ACCEPTED, ACCEPTED, DUPLICATE, DUPLICATE, ACCEPTED,
    ]  # fmt: skip


def test_the_window_spans_size_numbers_ending_at_the_highest() -> None:
    window = ReplayWindow(64)
    window.check(100)
    assert window.check(36) is TOO_OLD  # 100 - 64: at the edge, out
    assert window.check(37) is ACCEPTED  # 100 - 63: the oldest number still judged
    assert window.check(37) is DUPLICATE


def test_a_jump_of_a_whole_window_forgets_everything_below() -> None:
    window = ReplayWindow(64)
    for sequence in range(1, 50):
        window.check(sequence)
    assert window.check(1000) is ACCEPTED
    assert window.check(49) is TOO_OLD
    assert window.check(999) is ACCEPTED


def test_huge_jumps_and_the_top_of_the_u64_range() -> None:
    window = ReplayWindow()
    assert window.check(1) is ACCEPTED
    assert window.check(2**63) is ACCEPTED
    assert window.check(1) is TOO_OLD
    assert window.check(2**63 - 1) is ACCEPTED
    assert window.check(U64) is ACCEPTED
    assert window.check(U64) is DUPLICATE
    assert window.check(U64 - 4095) is ACCEPTED
    assert window.check(U64 - 4096) is TOO_OLD


def test_sequence_zero_is_never_valid() -> None:
    window = ReplayWindow()
    assert window.check(0) is TOO_OLD
    window.check(5)
    assert window.check(0) is TOO_OLD
    assert window.check(-1) is TOO_OLD


def test_a_window_smaller_than_64_is_refused() -> None:
    with pytest.raises(ConfigError, match="window size 63 is too small; it must be at least 64"):
        ReplayWindow(63)
    with pytest.raises(ConfigError):
        DuplicateFilter(window_size=8)


def near(highest: int, size: int) -> st.SearchStrategy[int]:
    """Numbers around the window's lower edge and just above its top."""
    offsets = st.integers(-size - 2, -size + 2) | st.integers(-2, 3)
    return offsets.map(lambda offset: min(max(highest + offset, 0), U64))


@RELAXED
@given(st.sampled_from([64, 65, 100, 4096]), st.data())
def test_the_window_agrees_with_a_model_that_remembers_everything(
    size: int, data: st.DataObject
) -> None:
    window, model = ReplayWindow(size), ModelWindow(size)
    for _ in range(data.draw(st.integers(0, 200))):
        sequence = data.draw(SEQUENCES | near(model.highest, size))
        assert window.check(sequence) is model.check(sequence), sequence


@RELAXED
@given(st.sampled_from([64, 65, 100, 203]), st.lists(st.integers(1, 210), max_size=60), st.data())
def test_sliding_by_any_step_forgets_exactly_the_numbers_that_leave_the_window(
    size: int, steps: list[int], data: st.DataObject
) -> None:
    # Steps of every length, around the ring more than once, each followed by a
    # look back at a number still inside the window or just below it.
    window, model = ReplayWindow(size), ModelWindow(size)
    sequence = 0
    for step in steps:
        sequence += step
        assert window.check(sequence) is model.check(sequence), sequence
        probe = max(sequence - data.draw(st.integers(0, size + 2)), 0)
        assert window.check(probe) is model.check(probe), probe


@RELAXED
@given(st.lists(SEQUENCES, max_size=200))
def test_no_number_is_ever_accepted_twice(sequences: list[int]) -> None:
    window = ReplayWindow(64)
    accepted = [s for s in sequences + sequences if window.check(s) is ACCEPTED]
    assert len(accepted) == len(set(accepted))


@RELAXED
@given(st.integers(1, 10_000), st.permutations(range(64)))
def test_any_order_within_the_window_delivers_every_packet(start: int, order: list[int]) -> None:
    window = ReplayWindow(64)
    assert all(window.check(start + offset) is ACCEPTED for offset in order)


# --- many senders ---------------------------------------------------------------------


def test_senders_are_judged_independently() -> None:
    senders = DuplicateFilter()
    assert senders.check(1, 1) is ACCEPTED
    assert senders.check(2, 1) is ACCEPTED
    assert senders.check(1, 1) is DUPLICATE
    assert senders.senders == 2


def test_a_full_table_forgets_the_least_recently_heard_sender() -> None:
    senders = DuplicateFilter(max_senders=2)
    senders.check(1, 1)
    senders.check(2, 1)
    senders.check(1, 2)  # sender 1 is now the most recent
    senders.check(3, 1)  # evicts sender 2
    assert (senders.senders, senders.evictions) == (2, 1)
    assert senders.check(1, 2) is DUPLICATE  # still remembered
    assert senders.check(2, 1) is ACCEPTED  # forgotten: a replay gets through, once
    assert senders.evictions == 2


def test_an_invalid_number_from_an_unknown_sender_takes_no_room() -> None:
    senders = DuplicateFilter(max_senders=1)
    senders.check(1, 1)
    assert senders.check(2, 0) is TOO_OLD
    assert (senders.senders, senders.evictions) == (1, 0)
    assert senders.check(1, 1) is DUPLICATE


def test_the_table_needs_room_for_one_sender() -> None:
    with pytest.raises(ConfigError, match="max_senders is 0; it must be at least 1"):
        DuplicateFilter(max_senders=0)


class SendersMachine(RuleBasedStateMachine):
    """Any mix of senders and numbers: same verdicts as a perfect-memory LRU model."""

    MAX_SENDERS = 3
    SIZE = 64

    def __init__(self) -> None:
        super().__init__()
        self.real = DuplicateFilter(window_size=self.SIZE, max_senders=self.MAX_SENDERS)
        self.model: OrderedDict[int, ModelWindow] = OrderedDict()
        self.evictions = 0

    def expected(self, incarnation: int, sequence: int) -> Verdict:
        window = self.model.get(incarnation)
        if window is not None:
            self.model.move_to_end(incarnation)
            return window.check(sequence)
        if sequence < 1:
            return TOO_OLD
        if len(self.model) == self.MAX_SENDERS:
            self.model.popitem(last=False)
            self.evictions += 1
        window = self.model[incarnation] = ModelWindow(self.SIZE)
        return window.check(sequence)

    @rule(incarnation=st.sampled_from([1, 2, 3, 4, 5, U64]), sequence=SEQUENCES)
    def packet_arrives(self, incarnation: int, sequence: int) -> None:
        assert self.real.check(incarnation, sequence) is self.expected(incarnation, sequence)

    @rule(incarnation=st.sampled_from([1, 2, 3, 4, 5, U64]), data=st.data())
    def packet_arrives_near_the_edges(self, incarnation: int, data: st.DataObject) -> None:
        window = self.model.get(incarnation)
        sequence = data.draw(near(window.highest if window else 1, self.SIZE))
        assert self.real.check(incarnation, sequence) is self.expected(incarnation, sequence)

    @rule(incarnation=st.sampled_from([1, 2, 3, 4, 5, U64]), data=st.data())
    def packet_arrives_again(self, incarnation: int, data: st.DataObject) -> None:
        window = self.model.get(incarnation)
        if window and window.seen:
            sequence = data.draw(st.sampled_from(sorted(window.seen)))
            assert self.real.check(incarnation, sequence) is self.expected(incarnation, sequence)

    @invariant()
    def memory_is_bounded_and_evictions_counted(self) -> None:
        assert self.real.senders == len(self.model) <= self.MAX_SENDERS
        assert self.real.evictions == self.evictions


TestDuplicateFilterAgreesWithAPerfectMemoryModel = SendersMachine.TestCase
TestDuplicateFilterAgreesWithAPerfectMemoryModel.settings = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow], stateful_step_count=60
)
