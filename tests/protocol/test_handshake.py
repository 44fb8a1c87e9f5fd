"""The sealed handshake's answer budget: what any source, forged or not, can draw."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from relay_core.protocol.handshake import ANSWERS_PER_SOURCE, HELLO_WAITS, AnswerBudget

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
