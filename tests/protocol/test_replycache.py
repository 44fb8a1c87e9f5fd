"""The reply cache stays within its bounds and forgets the oldest reply first; a retried
request gets its cached reply again only where, and as much as, the protocol allows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay_core.observe.stats import Counters
from relay_core.protocol.events import Arrival
from relay_core.protocol.replycache import ReplyCache, Retry, call_key, check_retry
from relay_core.protocol.wire import PACKET_HEADER_SIZE

_U64 = st.integers(0, 2**64 - 1)


@given(_U64, _U64, _U64, _U64)
def test_a_call_key_names_one_incarnation_and_call_id(a: int, b: int, c: int, d: int) -> None:
    assert (call_key(a, b) == call_key(c, d)) == ((a, b) == (c, d))


def test_a_stored_reply_is_found_by_its_call() -> None:
    cache = ReplyCache()
    cache.put(call_key(1, 7), b"reply")
    assert cache.get(call_key(1, 7)) == b"reply"
    assert cache.get(call_key(2, 7)) is None


def test_the_oldest_reply_goes_first_when_entries_run_out() -> None:
    cache = ReplyCache(max_entries=2)
    for call in range(3):
        cache.put(call_key(1, call), b"r")
    assert [cache.get(call_key(1, call)) for call in range(3)] == [None, b"r", b"r"]


def test_a_reply_larger_than_the_byte_bound_is_not_kept() -> None:
    cache = ReplyCache(max_bytes=10)
    cache.put(call_key(1, 1), b"x" * 11)
    assert cache.get(call_key(1, 1)) is None


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40), st.binary(max_size=30))))
def test_entries_and_bytes_never_exceed_the_bounds_and_the_newest_stay(puts: list[tuple[int, int, bytes]]) -> None:
    cache = ReplyCache(max_entries=8, max_bytes=100)
    model: dict[int, bytes] = {}  # insertion-ordered: the oldest first
    for incarnation, call, frame in puts:
        key = call_key(incarnation, call)
        cache.put(key, frame)
        model.pop(key, None)
        model[key] = frame
        while len(model) > 8 or sum(map(len, model.values())) > 100:
            del model[next(iter(model))]
        assert len(cache) <= 8
        assert cache.size_bytes <= 100
        assert len(cache) == len(model)
        assert cache.size_bytes == sum(map(len, model.values()))
        assert all(cache.get(kept) == frame for kept, frame in model.items())


def test_storing_a_reply_again_makes_it_the_newest() -> None:
    cache = ReplyCache(max_entries=2)
    cache.put(call_key(1, 1), b"first")
    cache.put(call_key(1, 2), b"second")
    cache.put(call_key(1, 1), b"again")
    cache.put(call_key(1, 3), b"third")
    assert [cache.get(call_key(1, call)) for call in (1, 2, 3)] == [b"again", None, b"third"]
    assert cache.size_bytes == len(b"again") + len(b"third")


def test_a_reply_is_kept_with_where_it_was_sent_until_it_is_forgotten() -> None:
    cache = ReplyCache(max_entries=1)
    first_link, second_link = object(), object()
    cache.put(call_key(1, 1), b"one", first_link)
    assert cache.sent_to(call_key(1, 1)) is first_link
    cache.put(call_key(1, 2), b"two", second_link)
    assert cache.sent_to(call_key(1, 1)) is None
    assert cache.sent_to(call_key(1, 2)) is second_link


# -- what a retried request gets (docs/protocol.md, section 6) ------------------

HERE, ELSEWHERE = object(), object()
KEY = call_key(9, 1)


def retried(resend_left: int) -> Arrival:
    arrival = Arrival("udp", ("127.0.0.1", 9000), Counters())
    arrival.resend_left = resend_left
    return arrival


def answered(reply: bytes = b"r" * 100) -> ReplyCache:
    cache = ReplyCache()
    cache.put(KEY, reply, HERE)
    return cache


def test_a_request_never_answered_is_no_retry() -> None:
    arrival = retried(1000)
    assert check_retry(ReplyCache(), KEY, HERE, arrival, reliable=False) is None
    assert arrival.counters.duplicates == 0


def test_an_answered_retry_from_where_the_reply_went_gets_it_again_within_its_budget() -> None:
    arrival = retried(1000)
    assert check_retry(answered(), KEY, HERE, arrival, reliable=False) == (Retry.RESEND, b"r" * 100)
    assert arrival.resend_left == 1000 - 100 - PACKET_HEADER_SIZE
    assert arrival.counters.duplicates == 1


def test_an_answered_retry_from_elsewhere_gets_nothing_and_is_counted() -> None:
    arrival = retried(1000)
    assert check_retry(answered(), KEY, ELSEWHERE, arrival, reliable=False) == (Retry.NOT_RESENT, b"")
    assert arrival.counters.replies_not_resent == 1
    assert arrival.resend_left == 1000


def test_a_reply_larger_than_the_retrys_budget_is_refused_not_resent() -> None:
    arrival = retried(50)
    assert check_retry(answered(), KEY, HERE, arrival, reliable=False) == (Retry.REFUSE, b"r" * 100)
    assert arrival.counters.replies_not_resent == 1
    assert arrival.resend_left == 50


def test_a_retry_over_a_stream_gets_its_reply_whatever_its_size() -> None:
    arrival = retried(0)
    assert check_retry(answered(), KEY, HERE, arrival, reliable=True) == (Retry.RESEND, b"r" * 100)
    assert arrival.resend_left == 0


def test_a_sealed_retry_gets_its_reply_whatever_its_size() -> None:
    arrival = retried(0)
    arrival.key_id = 7
    assert check_retry(answered(), KEY, HERE, arrival, reliable=False) == (Retry.RESEND, b"r" * 100)


@given(st.integers(0, 400), st.lists(st.integers(0, 200), max_size=10))
def test_a_packet_never_draws_more_than_its_resend_budget(budget: int, sizes: list[int]) -> None:
    arrival = retried(budget)
    drawn = sum(size + PACKET_HEADER_SIZE for size in sizes if arrival.draw_resend(size))
    assert drawn <= budget
    assert arrival.resend_left == budget - drawn
