"""A full queue's senders (tcp routes, quic peers and connections) wait on one future."""

from __future__ import annotations

from relay_transports._held_senders import HeldSenders


async def test_every_sender_held_back_waits_on_the_same_future_until_released() -> None:
    held = HeldSenders()
    first, second = held.hold(), held.hold()
    assert first is second and not first.done()
    held.release()
    await first
    assert held.future is None


async def test_a_release_with_no_one_held_back_is_harmless_and_a_new_hold_waits_again() -> None:
    held = HeldSenders()
    held.release()
    earlier = held.hold()
    held.release()
    later = held.hold()
    assert earlier.done() and not later.done()
    held.release()


async def test_a_future_cancelled_by_its_waiters_is_let_go_without_error() -> None:
    held = HeldSenders()
    held.hold().cancel()
    held.release()
    assert held.future is None
