"""The call table, without a clock: which calls are open, and which have given up when.

Time is a number the test moves; the table is asked what is due.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay_core.protocol.calls import LARGEST_CALL_ID, MAX_LANES, NO_DEADLINE, CallTable


def test_a_call_gives_up_at_its_deadline_and_not_before() -> None:
    table = CallTable()
    call = table.open(5)
    assert table.arm(call, 2.0, now=10.0) == 12.0
    assert table.next_deadline() == 12.0
    assert table.expire(11.9) == []
    assert table.expire(12.0) == [call]
    assert table.next_deadline() == NO_DEADLINE
    assert table.is_waiting(call)  # open until its caller closes it
    assert table.close(call, 2.0) is True
    assert not table.is_waiting(call)


def test_a_closed_call_never_expires() -> None:
    table = CallTable()
    call = table.open()
    table.arm(call, 1.0, now=0.0)
    table.close(call, 1.0)
    assert table.expire(100.0) == []
    assert table.next_deadline() == NO_DEADLINE


def test_an_unarmed_call_has_no_deadline() -> None:
    table = CallTable()
    table.open()
    assert table.next_deadline() == NO_DEADLINE
    assert table.expire(1e9) == []


def test_ids_taken_skip_open_ones_and_wrap_below_the_largest() -> None:
    table = CallTable()
    assert table.open(7) == 7
    assert table.open(7) == 8
    assert table.open(LARGEST_CALL_ID) == LARGEST_CALL_ID
    assert table.open(LARGEST_CALL_ID) == 1
    assert table.open(0) == 2


def test_calls_of_one_timeout_expire_in_the_order_they_were_made() -> None:
    table = CallTable()
    calls = [table.open(n) for n in range(1, 6)]
    for index, call in enumerate(calls):
        table.arm(call, 1.0, now=float(index))
    assert table.expire(2.5) == calls[:2]
    assert table.next_deadline() == 3.0
    assert table.expire(10.0) == calls[2:]


def test_more_distinct_timeouts_than_lanes_still_each_expire_on_time() -> None:
    table = CallTable()
    long_calls = [table.open(n) for n in range(1, MAX_LANES + 1)]
    for index, call in enumerate(long_calls):
        table.arm(call, 1000.0 + index, now=0.0)
    beyond = table.open(100)
    table.arm(beyond, 0.5, now=0.0)
    assert table.next_deadline() == 0.5
    assert table.expire(0.5) == [beyond]
    assert table.next_deadline() == 1000.0


operations = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.sampled_from([0.5, 1.0, 2.0, 3.0, 7.0, 11.0, 13.0,
                                                     17.0, 19.0, 23.0])),
        st.tuples(st.just("close"), st.integers(0, 30)),
        st.tuples(st.just("advance"), st.floats(0.0, 5.0)),
    ),
    max_size=60,
)


@given(operations)
def test_the_table_expires_exactly_the_open_calls_past_their_deadline(
        steps: list[tuple[str, float]]) -> None:
    # Few enough lanes that some timeouts go to the heap.
    table = CallTable(max_lanes=3)
    now = 0.0
    deadlines: dict[int, float] = {}  # open, armed and not yet expired
    timeouts: dict[int, float] = {}
    opened: list[int] = []
    for action, value in steps:
        if action == "open":
            call = table.open(len(opened) + 1)
            opened.append(call)
            timeouts[call] = value
            deadlines[call] = table.arm(call, value, now)
            assert deadlines[call] == now + value
        elif action == "close" and opened:
            call = opened[int(value) % len(opened)]
            table.close(call, timeouts[call])
            deadlines.pop(call, None)
        else:
            now += value
            due = sorted(call for call, deadline in deadlines.items() if deadline <= now)
            assert sorted(table.expire(now)) == due
            for call in due:
                del deadlines[call]
        assert table.next_deadline() == min(deadlines.values(), default=NO_DEADLINE)
