"""Local actors: spawning, bounded mailboxes, local RPC, restarts, stopping."""

from __future__ import annotations

import asyncio
import logging

import pytest

from nodes import collector, wait_for
from relay_core import (
    ActorContext,
    ActorExists,
    ActorStopped,
    MailboxFull,
    Node,
    NodeConfig,
    RemoteError,
    Rpc,
    RpcTimeout,
)


def quiet_config() -> NodeConfig:
    return NodeConfig(listen={})



async def test_a_spawned_actor_receives_messages_in_order() -> None:
    received: list[object] = []
    async with Node(quiet_config()) as node:
        ref = node.spawn(collector(received), name="sink")
        for index in range(5):
            await ref.send(index)
        await node.stop("sink")
    assert received == [0, 1, 2, 3, 4]


async def test_the_context_gives_the_actor_its_name_ref_and_node() -> None:
    seen: dict[str, object] = {}

    async def actor(ctx: ActorContext) -> None:
        seen.update(name=ctx.name, ref=ctx.ref, node=ctx.node)

    async with Node(quiet_config()) as node:
        ref = node.spawn(actor, name="me")
        await node.stop("me")
    assert seen == {"name": "me", "ref": ref, "node": node}


async def test_a_mailbox_is_bounded_in_bytes_by_the_config_or_by_spawn() -> None:
    async def idle(ctx: ActorContext) -> None:
        async for _ in ctx:
            pass

    async with Node(NodeConfig(listen={}, mailbox_bytes=4096)) as node:
        node.spawn(idle, name="default")
        node.spawn(idle, name="own", mailbox_bytes=1 << 20)
        assert node.mailboxes["default"].max_bytes == 4096
        assert node.mailboxes["own"].max_bytes == 1 << 20
        with pytest.raises(ValueError, match="mailbox_bytes must be >= 1, got 0"):
            node.spawn(idle, name="none", mailbox_bytes=0)


async def test_try_send_reports_a_full_mailbox_and_send_waits_for_room() -> None:
    gate = asyncio.Event()
    received: list[object] = []

    async def slow(ctx: ActorContext) -> None:
        await gate.wait()
        async for message in ctx:
            received.append(message)

    async with Node(quiet_config()) as node:
        ref = node.spawn(slow, name="slow", mailbox_size=2)
        ref.try_send(1)
        ref.try_send(2)
        with pytest.raises(MailboxFull):
            ref.try_send(3)
        waiting = asyncio.ensure_future(ref.send(3))
        await asyncio.sleep(0)
        assert not waiting.done()
        gate.set()
        await waiting
        await node.stop("slow")
    assert received == [1, 2, 3]


async def test_a_local_rpc_returns_the_reply_and_carries_id_and_deadline() -> None:
    seen: list[Rpc] = []

    async def handler(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            seen.append(message)
            message.respond({"hello": message.request})

    async with Node(quiet_config()) as node:
        ref = node.spawn(handler, name="greeter")
        reply = await ref.rpc("ada", timeout=5.0, request_id="req-1")
    assert reply == {"hello": "ada"}
    assert seen[0].request_id == "req-1"
    assert 0 < seen[0].deadline


async def test_a_local_rpc_that_fails_raises_remote_error_with_the_type() -> None:
    async def handler(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            message.fail(KeyError("nope"))

    async with Node(quiet_config()) as node:
        ref = node.spawn(handler, name="failing")
        with pytest.raises(RemoteError) as caught:
            await ref.rpc("x", timeout=5.0)
    assert caught.value.remote_type == "KeyError"


async def test_a_local_rpc_without_an_answer_times_out_and_is_marked_cancelled() -> None:
    held: list[Rpc] = []

    async def silent(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            held.append(message)

    async with Node(quiet_config()) as node:
        ref = node.spawn(silent, name="silent")
        with pytest.raises(RpcTimeout):
            await ref.rpc("x", timeout=0.05)
        assert held[0].cancelled


async def test_spawning_a_taken_name_is_refused() -> None:
    async with Node(quiet_config()) as node:
        node.spawn(collector([]), name="x")
        with pytest.raises(ActorExists):
            node.spawn(collector([]), name="x")


async def test_an_actor_that_raises_is_restarted_on_error_and_keeps_its_mailbox(
        caplog: pytest.LogCaptureFixture) -> None:
    received: list[object] = []

    async def fragile(ctx: ActorContext) -> None:
        async for message in ctx:
            if message == "boom":
                raise RuntimeError("boom")
            received.append(message)

    async with Node(quiet_config()) as node:
        ref = node.spawn(fragile, name="fragile", restart="on-error")
        with caplog.at_level(logging.INFO, logger="relay_core.actors"):
            await ref.send("before")
            await ref.send("boom")
            await ref.send("after")
            await wait_for(lambda: len(received) == 2, "the restarted actor")
    assert received == ["before", "after"]
    assert "actor 'fragile' failed" in caplog.text
    assert "restarting actor 'fragile'" in caplog.text


async def test_restarts_stop_at_the_cap_within_the_window(caplog: pytest.LogCaptureFixture) -> None:
    async def always_fails(ctx: ActorContext) -> None:
        await ctx.receive()
        raise RuntimeError("boom")

    async with Node(quiet_config()) as node:
        ref = node.spawn(always_fails, name="doomed", restart="on-error", max_restarts=2,
                         restart_window=3600)
        for _ in range(3):
            await ref.send("go")
        with caplog.at_level(logging.ERROR, logger="relay_core.actors"):
            while "doomed" in node.mailboxes:
                await asyncio.sleep(0.01)
    assert "not restarting it" in caplog.text


async def test_a_request_in_hand_when_the_actor_crashes_fails_with_that_error() -> None:
    async def crashes(ctx: ActorContext) -> None:
        await ctx.receive()
        raise ValueError("bad request")

    async with Node(quiet_config()) as node:
        ref = node.spawn(crashes, name="crashes")
        with pytest.raises(RemoteError) as caught:
            await ref.rpc("x", timeout=5.0)
    assert (caught.value.remote_type, caught.value.remote_message) == ("ValueError", "bad request")


async def test_stopping_delivers_queued_messages_then_refuses_new_ones() -> None:
    received: list[object] = []
    async with Node(quiet_config()) as node:
        ref = node.spawn(collector(received), name="sink")
        ref.try_send("a")
        ref.try_send("b")
        await node.stop("sink")
        with pytest.raises(ActorStopped):
            await ref.send("c")
    assert received == ["a", "b"]


async def test_an_actor_that_ignores_stop_is_cancelled_after_the_grace_period() -> None:
    cancelled = asyncio.Event()

    async def stubborn(ctx: ActorContext) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with Node(quiet_config()) as node:
        node.spawn(stubborn, name="stubborn")
        await asyncio.sleep(0)
        await node.stop("stubborn", grace=0.01)
    assert cancelled.is_set()


async def test_requests_still_queued_when_an_actor_ends_fail_with_actor_stopped() -> None:
    async def quits(ctx: ActorContext) -> None:
        await ctx.receive()

    async with Node(quiet_config()) as node:
        ref = node.spawn(quits, name="quits", mailbox_size=10)
        ref.try_send("first")
        with pytest.raises(RemoteError) as caught:
            await ref.rpc("second", timeout=5.0)
    assert caught.value.remote_type == "ActorStopped"
