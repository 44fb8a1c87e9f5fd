"""The sealed handshake without a clock: when a sender's hellos go, and the answer budget
that bounds what any source, forged or not, can draw."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core.protocol.handshake import (
    ANSWERS_PER_SOURCE,
    HELLO_WAITS,
    AnswerBudget,
    HelloSchedule,
)

draws = st.lists(st.tuples(st.integers(0, 5), st.floats(0, 0.999)), max_size=400)


@given(draws=draws, seconds=st.lists(st.integers(0, 3), min_size=1, max_size=4))
def test_no_source_draws_more_than_its_share_in_any_second(
    draws: list[tuple[int, float]], seconds: list[int]
) -> None:
    budget, allowed = AnswerBudget(per_source=3, max_sources=4), Counter[tuple[int, int]]()
    for second in sorted(seconds):
        for source, fraction in draws:
            if budget.allows(source, second + fraction):
                allowed[second, source] += 1
        assert budget.sources <= 4
    assert all(count <= 3 for count in allowed.values())
    for second in set(seconds):
        assert len({source for (at, source) in allowed if at == second}) <= 4


def test_a_new_second_gives_every_source_its_share_again() -> None:
    budget = AnswerBudget()
    assert [budget.allows("a", 10.2) for _ in range(ANSWERS_PER_SOURCE + 1)] == [
        True] * ANSWERS_PER_SOURCE + [False]
    assert budget.allows("b", 10.9)  # another source draws its own share
    assert budget.allows("a", 11.0)


def test_a_full_table_of_sources_answers_no_new_source_but_the_old_ones_keep_theirs() -> None:
    budget = AnswerBudget(per_source=2, max_sources=2)
    assert budget.allows("a", 0.1) and budget.allows("b", 0.2)
    assert not budget.allows("c", 0.3)
    assert budget.allows("a", 0.4)
    assert budget.sources == 2


def test_a_sender_gives_up_on_a_silent_peer_within_a_few_seconds() -> None:
    assert len(HELLO_WAITS) >= 3
    assert list(HELLO_WAITS) == sorted(HELLO_WAITS)
    assert sum(HELLO_WAITS) < 5.0


def test_the_first_hello_goes_at_once_and_the_next_only_when_its_wait_has_passed() -> None:
    hellos = HelloSchedule(b"hello", now=100.0, waits=(0.1, 0.2))
    assert hellos.due(100.0) == b"hello"
    assert hellos.due(100.0) is None
    assert hellos.next_deadline() == pytest.approx(100.1)
    assert hellos.due(100.05) is None
    assert hellos.due(100.1) == b"hello"
    assert hellos.next_deadline() == pytest.approx(100.3)


def test_a_sender_gives_up_only_when_the_wait_after_its_last_hello_has_passed() -> None:
    hellos = HelloSchedule(b"hello", now=0.0, waits=(0.1, 0.2, 0.4))
    sent_at = []
    now = 0.0
    while not hellos.gave_up(now):
        if hellos.due(now) is not None:
            sent_at.append(now)
        assert hellos.due(now) is None
        now = hellos.next_deadline()
    assert sent_at == pytest.approx([0.0, 0.1, 0.3])
    assert now == pytest.approx(0.7)
    assert hellos.sent == 3


@given(early=st.lists(st.floats(0, 5), max_size=30))
def test_a_driver_waking_early_or_often_sends_each_hello_once_then_gives_up(
        early: list[float]) -> None:
    hellos = HelloSchedule(b"hello", now=0.0)
    wakes = sorted(early)
    sent = 0
    now = 0.0
    while not hellos.gave_up(now):
        sent += hellos.due(now) is not None
        assert not hellos.gave_up(now) or sent == len(HELLO_WAITS)
        # Woken by anything (another packet, a spurious wake-up) or by its deadline.
        now = max(now, wakes.pop(0)) if wakes else hellos.next_deadline()
    assert sent == hellos.sent == len(HELLO_WAITS)
