"""An actor's mailbox: bounded, first in first out, one reader, closable."""

from __future__ import annotations

import asyncio

import pytest

from relay_core import ActorStopped
from relay_core.runtime.backlog import Backlog
from relay_core.runtime.mailbox import EMPTY, WEIGHED_FROM, ByteBudget, Mailbox


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

KIB = 1024


def test_a_box_refuses_a_message_past_its_bytes_and_takes_again_once_one_is_read() -> None:
    mailbox = Mailbox(100, max_bytes=10 * KIB)
    assert mailbox.put_nowait("a", 6 * KIB)
    assert not mailbox.put_nowait("b", 6 * KIB)  # 12 KiB: past the bound, though 2 of 100
    assert mailbox.put_nowait("c", 4 * KIB)  # exactly the bound
    assert mailbox.bytes == 10 * KIB
    assert mailbox.poll() == "a"
    assert mailbox.bytes == 4 * KIB
    assert mailbox.put_nowait("b", 6 * KIB)
    assert [mailbox.take(), mailbox.take()] == ["c", "b"]
    assert mailbox.bytes == 0


def test_an_empty_box_takes_one_message_larger_than_its_bytes() -> None:
    mailbox = Mailbox(10, max_bytes=KIB)
    assert mailbox.put_nowait("large", 50 * KIB)
    assert not mailbox.put_nowait("small", KIB)
    assert mailbox.poll() == "large"
    assert mailbox.put_nowait("small", KIB)


def test_local_and_small_messages_weigh_nothing_and_the_count_bounds_them() -> None:
    mailbox = Mailbox(4, max_bytes=WEIGHED_FROM)
    assert mailbox.put_nowait("received", WEIGHED_FROM)
    assert mailbox.put_nowait("local")
    assert mailbox.put_nowait("small", WEIGHED_FROM - 1)
    assert not mailbox.put_nowait("received", WEIGHED_FROM)
    assert mailbox.put_nowait("local")
    assert not mailbox.put_nowait("local")  # four: the count
    assert mailbox.bytes == WEIGHED_FROM
    assert [mailbox.take() for _ in range(4)] == ["received", "local", "small", "local"]


def test_boxes_sharing_a_node_budget_refuse_past_it_and_take_again_once_read() -> None:
    node = ByteBudget(10 * KIB)
    first = Mailbox(10, max_bytes=8 * KIB, shared=node)
    second = Mailbox(10, max_bytes=8 * KIB, shared=node)
    assert first.put_nowait(1, 4 * KIB) and first.put_nowait(2, 4 * KIB)
    assert second.put_nowait(3, 2 * KIB)
    assert node.used == 10 * KIB
    assert not second.put_nowait(4, KIB)  # the second box has room; the node has none
    assert first.poll() == 1
    assert node.used == 6 * KIB
    assert second.put_nowait(4, KIB)


def test_an_empty_box_takes_one_message_even_when_the_node_budget_is_spent() -> None:
    node = ByteBudget(5 * KIB)
    full, empty = Mailbox(10, shared=node), Mailbox(10, shared=node)
    assert full.put_nowait("a", 5 * KIB)
    assert empty.put_nowait("b", 3 * KIB)  # so that every actor can make progress
    assert not empty.put_nowait("c", KIB)


def test_draining_a_box_gives_its_bytes_back_to_the_node() -> None:
    node = ByteBudget(10 * KIB)
    mailbox = Mailbox(10, shared=node)
    mailbox.put_nowait("a", 3 * KIB)
    mailbox.put_nowait("b", 3 * KIB)
    mailbox.close()
    assert mailbox.drain() == ["a", "b"]
    assert (mailbox.bytes, node.used) == (0, 0)


async def test_put_waits_for_bytes_as_it_waits_for_a_place() -> None:
    mailbox = Mailbox(10, max_bytes=10 * KIB)
    assert mailbox.put_nowait("a", 8 * KIB)
    writer = asyncio.ensure_future(mailbox.put("b", 8 * KIB))
    await asyncio.sleep(0)
    assert not writer.done()
    assert mailbox.poll() == "a"
    await writer
    assert (mailbox.poll(), mailbox.bytes) == ("b", 0)


async def test_a_reader_gets_weighed_messages_as_they_were_put() -> None:
    mailbox = Mailbox(10, max_bytes=10 * KIB)
    reader = await waiting_reader(mailbox)
    message = {"large": True}
    assert mailbox.put_nowait(message, 2 * KIB)
    assert await reader is message
    assert mailbox.bytes == 0


def test_a_byte_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes must be >= 1, got 0"):
        Mailbox(4, max_bytes=0)


# -- a parked connection's held packets count against the same node budget ----------


async def test_a_parked_sources_packets_count_against_the_node_budget() -> None:
    node = ByteBudget(10 * KIB)
    backlog = Backlog(asyncio.get_running_loop().create_future(), 100 * KIB, node)
    mailbox = Mailbox(10, shared=node)
    assert mailbox.put_nowait("held", 8 * KIB)
    assert backlog.hold(b"1" * 4 * KIB)  # its first packet, whatever the node holds
    assert not backlog.hold(b"2" * KIB)  # 13 KiB held: past the node's budget
    assert mailbox.poll() == "held"
    assert backlog.hold(b"2" * KIB)
    assert node.used == 5 * KIB
    assert backlog.take() == b"1" * 4 * KIB
    assert node.used == KIB
    assert backlog.let_go() == 1
    assert node.used == 0
