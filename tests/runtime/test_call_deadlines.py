"""Deadlines: each outgoing call gives up at its own deadline; a handled request knows its own.

All calls share one event-loop timer, at the call table's next deadline; these
tests pin down that sharing never changes which call expires, or when relative
to the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from nodes import udp_config
from relay_core import ActorContext, Node, Rpc, RpcTimeout
from relay_core.protocol.calls import MAX_LANES
from relay_core.runtime.calls import PendingCalls

LONG = 3600.0
"""Far longer than any test: a call with this timeout must not expire in one."""

GUARD = 30.0
"""How long a test waits for an expiry before failing instead of hanging."""


async def expiry_of(future: asyncio.Future[object]) -> None:
    """Wait until ``future`` is cancelled by its deadline; fail if it never is."""
    await asyncio.wait({future}, timeout=GUARD)
    assert future.cancelled(), "the call's deadline never cancelled it"


def answer(calls: PendingCalls, call_id: int, timeout: float) -> None:
    """What the dispatcher does when a reply comes in time."""
    future = calls.take(call_id)
    assert future is not None
    future.set_result("reply")
    assert calls.close(call_id, timeout) is False


async def test_a_call_is_cancelled_once_its_timeout_passes() -> None:
    calls = PendingCalls()
    _, future = calls.open(0.01)
    await expiry_of(future)


async def test_a_reserved_call_has_no_deadline_until_it_is_armed() -> None:
    calls = PendingCalls()
    call_id, future = calls.reserve()
    await asyncio.sleep(0.05)
    assert not future.done()
    calls.arm(call_id, future, 0.01)
    await expiry_of(future)


async def test_a_reply_that_comes_before_the_deadline_is_armed_is_still_delivered() -> None:
    calls = PendingCalls()
    call_id, _ = calls.reserve()
    future = calls.take(call_id)
    assert future is not None
    future.set_result("reply")
    calls.arm(call_id, future, 0.01)
    assert calls.close(call_id, 0.01) is False
    await asyncio.sleep(0.05)
    assert future.result() == "reply"


async def test_a_call_answered_in_time_is_not_cancelled_later() -> None:
    calls = PendingCalls()
    call_id, future = calls.open(0.01)
    answer(calls, call_id, 0.01)
    await asyncio.sleep(0.05)
    assert future.result() == "reply"


@pytest.mark.parametrize("first_timeout", [LONG, None], ids=["long timeout", "no timeout"])
async def test_a_short_call_made_after_a_longer_one_expires_alone(
        first_timeout: float | None) -> None:
    calls = PendingCalls()
    _, first = calls.open(first_timeout)
    _, short_call = calls.open(0.01)
    await expiry_of(short_call)
    assert not first.done()
    calls.fail_all(RuntimeError("test over"))
    with pytest.raises(RuntimeError):
        await first


async def test_calls_sharing_a_timeout_expire_in_the_order_they_were_made() -> None:
    calls = PendingCalls()
    futures = [calls.open(0.02)[1] for _ in range(5)]
    expired: list[int] = []

    def record(index: int) -> Callable[[object], None]:
        return lambda _: expired.append(index)

    for index, future in enumerate(futures):
        future.add_done_callback(record(index))
    await asyncio.wait(futures, timeout=GUARD)
    assert expired == [0, 1, 2, 3, 4]
    assert all(future.cancelled() for future in futures)


async def test_a_later_call_in_a_lane_still_expires_after_the_earlier_ones_were_answered() -> None:
    calls = PendingCalls()
    first_id, first = calls.open(0.2)
    await asyncio.sleep(0.1)  # the lane's timer, set for the first call, fires before the second's
    _, second = calls.open(0.2)
    answer(calls, first_id, 0.2)
    assert first.result() == "reply"
    await expiry_of(second)


async def test_more_distinct_timeouts_than_lanes_still_each_expire() -> None:
    calls = PendingCalls()
    long_calls = [calls.open(LONG + n)[1] for n in range(MAX_LANES)]
    _, beyond = calls.open(0.01)  # no lane left: it waits in the heap
    await expiry_of(beyond)
    assert not any(future.done() for future in long_calls)
    calls.fail_all(RuntimeError("test over"))


async def test_a_call_beyond_the_lanes_answered_in_time_is_not_cancelled() -> None:
    calls = PendingCalls()
    for n in range(MAX_LANES):
        calls.open(LONG + n)
    call_id, future = calls.open(0.01)
    answer(calls, call_id, 0.01)
    await asyncio.sleep(0.05)
    assert future.result() == "reply"
    calls.fail_all(RuntimeError("test over"))


async def test_fail_all_fails_waiting_calls_and_stops_their_timers() -> None:
    calls = PendingCalls()
    _, future = calls.open(0.01)
    calls.fail_all(RuntimeError("closed"))
    await asyncio.sleep(0.05)  # past the deadline: the timer must not touch it
    with pytest.raises(RuntimeError, match="closed"):
        future.result()


async def silent(ctx: ActorContext) -> None:
    async for _ in ctx:
        pass  # never answers


async def test_remote_calls_with_mixed_timeouts_each_time_out_on_their_own() -> None:
    async with Node(udp_config("server")) as server, Node(udp_config("client")) as client:
        server.spawn(silent, name="silent")
        ref = client.ref(server.address("udp") + "/silent")
        long_call = asyncio.ensure_future(ref.rpc("long", timeout=LONG))
        short_calls = [ref.rpc(n, timeout=0.05 + n / 100) for n in range(12)]
        results = await asyncio.wait_for(
            asyncio.gather(*short_calls, return_exceptions=True), GUARD)
        assert all(isinstance(result, RpcTimeout) for result in results)
        assert not long_call.done()
        long_call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long_call


def no_answer(value: object, error: BaseException | None) -> None:
    raise AssertionError("a cancelled request must not be answered")


async def test_a_handled_request_is_cancelled_by_the_clock_it_was_given() -> None:
    now = [100.0]
    rpc = Rpc("request", "0123456789abcdef", deadline=105.0, answer=no_answer,
              clock=lambda: now[0])
    assert not rpc.cancelled
    assert rpc.time_left == 5.0
    now[0] = 105.0
    assert rpc.cancelled


async def test_a_handled_request_without_a_clock_uses_the_running_loop() -> None:
    loop_time = asyncio.get_running_loop().time()
    assert not Rpc("r", "0123456789abcdef", loop_time + LONG, no_answer).cancelled
    assert Rpc("r", "0123456789abcdef", loop_time - 1.0, no_answer).cancelled
