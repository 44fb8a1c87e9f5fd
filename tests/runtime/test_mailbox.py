"""An actor's mailbox: bounded, first in first out, one reader, closable."""

from __future__ import annotations

import asyncio

import pytest

from relay_core import ActorStopped
from relay_core._mailbox import EMPTY, Mailbox


async def waiting_reader(mailbox: Mailbox) -> asyncio.Future[object]:
    """A reader already waiting on ``mailbox`` (it has run up to its first wait)."""
    reader = asyncio.ensure_future(mailbox.get())
    await asyncio.sleep(0)
    return reader


async def test_a_waiting_reader_gets_the_first_item_put() -> None:
    mailbox = Mailbox(4)
    reader = await waiting_reader(mailbox)
    assert mailbox.put_nowait("a")
    assert await reader == "a"


async def test_a_burst_put_while_the_reader_waits_is_read_in_order() -> None:
    mailbox = Mailbox(10)
    reader = await waiting_reader(mailbox)
    for item in range(5):
        assert mailbox.put_nowait(item)
    assert await reader == 0
    assert [await mailbox.get() for _ in range(4)] == [1, 2, 3, 4]
    assert mailbox.poll() is EMPTY


async def test_a_reader_cancelled_while_waiting_leaves_the_box_working() -> None:
    mailbox = Mailbox(4)
    reader = await waiting_reader(mailbox)
    reader.cancel()
    assert mailbox.put_nowait("kept")  # before the cancelled reader has run again
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await mailbox.get() == "kept"
    second = await waiting_reader(mailbox)
    assert mailbox.put_nowait("next")
    assert await second == "next"


async def test_a_full_box_refuses_put_nowait_and_put_waits_for_room() -> None:
    mailbox = Mailbox(1)
    assert mailbox.put_nowait(1)
    assert not mailbox.put_nowait(2)
    writer = asyncio.ensure_future(mailbox.put(2))
    await asyncio.sleep(0)
    assert not writer.done()
    assert mailbox.poll() == 1
    await writer
    assert mailbox.poll() == 2


async def test_a_closed_box_refuses_new_items_and_hands_out_what_it_holds() -> None:
    mailbox = Mailbox(4)
    mailbox.put_nowait("left")
    mailbox.close()
    with pytest.raises(ActorStopped, match="takes no more messages"):
        mailbox.put_nowait("late")
    assert await mailbox.get() == "left"
    with pytest.raises(ActorStopped, match="closed"):
        await mailbox.get()


async def test_closing_wakes_a_waiting_reader_with_actor_stopped() -> None:
    mailbox = Mailbox(4)
    reader = await waiting_reader(mailbox)
    mailbox.close()
    with pytest.raises(ActorStopped):
        await reader


def test_a_mailbox_needs_room_for_one_item() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        Mailbox(0)
