"""An actor's mailbox: bounded, first in first out, one reader, closable."""

from __future__ import annotations

import asyncio

import pytest

from relay_core import ActorStopped
from relay_core._mailbox import EMPTY, ByteBudget, Mailbox


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


# -- bytes: a received message weighs what its payload decoded from -----------------


def test_a_box_refuses_a_message_past_its_bytes_and_takes_again_once_one_is_read() -> None:
    mailbox = Mailbox(100, max_bytes=1000)
    assert mailbox.put_nowait("a", 600)
    assert not mailbox.put_nowait("b", 600)  # 1200 bytes: past the bound, though 2 of 100
    assert mailbox.put_nowait("c", 400)  # exactly the bound
    assert mailbox.bytes == 1000
    assert mailbox.poll() == "a"
    assert mailbox.bytes == 400
    assert mailbox.put_nowait("b", 600)
    assert [mailbox.take(), mailbox.take()] == ["c", "b"]
    assert mailbox.bytes == 0


def test_an_empty_box_takes_one_message_larger_than_its_bytes() -> None:
    mailbox = Mailbox(10, max_bytes=100)
    assert mailbox.put_nowait("large", 5000)
    assert not mailbox.put_nowait("small", 1)
    assert mailbox.poll() == "large"
    assert mailbox.put_nowait("small", 1)


def test_messages_sent_in_the_process_weigh_nothing() -> None:
    mailbox = Mailbox(3, max_bytes=10)
    assert mailbox.put_nowait("x", 10)
    assert mailbox.put_nowait("local")
    assert mailbox.put_nowait("local")
    assert not mailbox.put_nowait("local")  # the count still bounds them
    assert mailbox.bytes == 10


def test_boxes_sharing_a_node_budget_refuse_past_it_and_take_again_once_read() -> None:
    node = ByteBudget(1000)
    first, second = Mailbox(10, max_bytes=800, shared=node), Mailbox(10, max_bytes=800, shared=node)
    assert first.put_nowait(1, 400) and first.put_nowait(2, 400)
    assert second.put_nowait(3, 200)
    assert node.used == 1000
    assert not second.put_nowait(4, 100)  # the second box has room; the node has none
    assert first.poll() == 1
    assert node.used == 600
    assert second.put_nowait(4, 100)


def test_an_empty_box_takes_one_message_even_when_the_node_budget_is_spent() -> None:
    node = ByteBudget(500)
    full, empty = Mailbox(10, shared=node), Mailbox(10, shared=node)
    assert full.put_nowait("a", 500)
    assert empty.put_nowait("b", 300)  # so that every actor can make progress
    assert not empty.put_nowait("c", 1)


def test_draining_a_box_gives_its_bytes_back_to_the_node() -> None:
    node = ByteBudget(1000)
    mailbox = Mailbox(10, shared=node)
    mailbox.put_nowait("a", 300)
    mailbox.put_nowait("b", 300)
    mailbox.close()
    assert mailbox.drain() == ["a", "b"]
    assert (mailbox.bytes, node.used) == (0, 0)


async def test_put_waits_for_bytes_as_it_waits_for_a_place() -> None:
    mailbox = Mailbox(10, max_bytes=100)
    assert mailbox.put_nowait("a", 80)
    writer = asyncio.ensure_future(mailbox.put("b", 80))
    await asyncio.sleep(0)
    assert not writer.done()
    assert mailbox.poll() == "a"
    await writer
    assert (mailbox.poll(), mailbox.bytes) == ("b", 0)


def test_a_byte_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes must be >= 1, got 0"):
        Mailbox(4, max_bytes=0)
