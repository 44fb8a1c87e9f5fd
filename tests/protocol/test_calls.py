"""Call deadlines, without a clock: which calls have given up at a given time, and when
the next one will.

Time is a number the test moves; the table is asked what is due.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from relay_core.protocol.calls import (
    LARGEST_CALL_ID,
    MAX_LANES,
    NO_DEADLINE,
    CallDeadlines,
    next_call_id,
)


def test_a_call_gives_up_at_its_deadline_and_not_before() -> None:
    deadlines = CallDeadlines()
    assert deadlines.arm(5, 2.0, now=10.0) == 12.0
    assert deadlines.next_deadline() == 12.0
    assert deadlines.expire(11.9) == []
    assert deadlines.expire(12.0) == [5]
    assert deadlines.next_deadline() == NO_DEADLINE
    assert deadlines.expire(100.0) == []  # expired once


def test_a_disarmed_call_never_expires() -> None:
    deadlines = CallDeadlines()
    deadlines.arm(1, 1.0, now=0.0)
    deadlines.disarm(1, 1.0)
    assert deadlines.expire(100.0) == []
    assert deadlines.next_deadline() == NO_DEADLINE


def test_nothing_armed_has_no_deadline() -> None:
    assert CallDeadlines().next_deadline() == NO_DEADLINE
    assert CallDeadlines().expire(1e9) == []


def test_a_links_call_ids_run_up_and_wrap_below_the_largest() -> None:
    assert next_call_id(7) == 8
    assert next_call_id(LARGEST_CALL_ID) == 1
    assert next_call_id(0) == 1


def test_calls_of_one_timeout_expire_in_the_order_they_were_armed() -> None:
    deadlines = CallDeadlines()
    for call in range(1, 6):
        deadlines.arm(call, 1.0, now=float(call))
    assert deadlines.expire(3.5) == [1, 2]
    assert deadlines.next_deadline() == 4.0
    assert deadlines.expire(10.0) == [3, 4, 5]


def test_more_distinct_timeouts_than_lanes_still_each_expire_on_time() -> None:
    deadlines = CallDeadlines()
    for call in range(1, MAX_LANES + 1):
        deadlines.arm(call, 1000.0 + call, now=0.0)
    deadlines.arm(100, 0.5, now=0.0)  # no lane left: it waits in the heap
    assert deadlines.next_deadline() == 0.5
    assert deadlines.expire(0.5) == [100]
    assert deadlines.next_deadline() == 1001.0


def test_a_call_disarmed_in_the_heap_is_skipped() -> None:
    deadlines = CallDeadlines(max_lanes=0)
    deadlines.arm(1, 1.0, now=0.0)
    deadlines.arm(2, 2.0, now=0.0)
    deadlines.disarm(1, 1.0)
    assert deadlines.next_deadline() == 2.0
    assert deadlines.expire(5.0) == [2]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("arm"), st.sampled_from([0.5, 1.0, 2.0, 3.0, 7.0, 11.0, 13.0])),
        st.tuples(st.just("disarm"), st.integers(0, 30)),
        st.tuples(st.just("advance"), st.floats(0.0, 5.0)),
    ),
    max_size=60,
)


@given(operations)
def test_exactly_the_armed_calls_past_their_deadline_expire(
        steps: list[tuple[str, float]]) -> None:
    # Few enough lanes that some timeouts go to the heap.
    table = CallDeadlines(max_lanes=3)
    now = 0.0
    armed: dict[int, tuple[float, float]] = {}  # call: (deadline, timeout)
    made = 0
    for action, value in steps:
        if action == "arm":
            made += 1
            armed[made] = (table.arm(made, value, now), value)
            assert armed[made][0] == now + value
        elif action == "disarm" and made:
            call = int(value) % made + 1
            if call in armed:
                table.disarm(call, armed.pop(call)[1])
        else:
            now += value
            due = sorted(call for call, (deadline, _) in armed.items() if deadline <= now)
            assert sorted(table.expire(now)) == due
            for call in due:
                del armed[call]
        assert table.next_deadline() == min((deadline for deadline, _ in armed.values()),
                                            default=NO_DEADLINE)
