"""The reply cache stays within its bounds and forgets the oldest reply first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay_core._replycache import ReplyCache


def test_a_stored_reply_is_found_by_its_call() -> None:
    cache = ReplyCache()
    cache.put((1, 7), b"reply")
    assert cache.get((1, 7)) == b"reply"
    assert cache.get((2, 7)) is None


def test_the_oldest_reply_goes_first_when_entries_run_out() -> None:
    cache = ReplyCache(max_entries=2)
    for call in range(3):
        cache.put((1, call), b"r")
    assert [cache.get((1, call)) for call in range(3)] == [None, b"r", b"r"]


def test_a_reply_larger_than_the_byte_bound_is_not_kept() -> None:
    cache = ReplyCache(max_bytes=10)
    cache.put((1, 1), b"x" * 11)
    assert cache.get((1, 1)) is None


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40), st.binary(max_size=30))))
def test_entries_and_bytes_never_exceed_the_bounds(puts: list[tuple[int, int, bytes]]) -> None:
    cache = ReplyCache(max_entries=8, max_bytes=100)
    for incarnation, call, frame in puts:
        cache.put((incarnation, call), frame)
        assert len(cache) <= 8
        assert cache.size_bytes <= 100
