"""RPC across nodes: deadlines, cancellation, typed errors, request ids, retries."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os

import pytest

from nodes import LossyRelay, RawUdp, udp_config, wait_for
from relay_core import (
    ActorContext,
    Node,
    RemoteError,
    RequestIdFilter,
    Rpc,
    RpcCancelled,
    RpcTimeout,
    current_request_id,
)
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet
from relay_core.protocol.wire_read import decode_packet
from relay_core.runtime.rpc import new_request_id


class Observed:
    """What a remote handler saw, recorded on the remote node."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.runs = 0


def slow_handler(observed: Observed, seconds: float = 3600.0):  # type: ignore[no-untyped-def]
    async def work(request: object) -> object:
        observed.runs += 1
        observed.started.set()
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            observed.cancelled.set()
            raise
        return request

    async def actor(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            await message.handle(work)

    return actor


async def test_a_slow_handler_is_cancelled_on_the_remote_node_when_the_deadline_passes() -> None:
    observed = Observed()
    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(slow_handler(observed), name="slow")
        with pytest.raises(RpcTimeout):
            await alpha.ref(f"{beta.address('udp')}/slow").rpc("work", timeout=0.2)
        async with asyncio.timeout(10):
            await observed.cancelled.wait()


async def test_the_remote_node_honours_the_deadline_even_without_a_cancel_frame() -> None:
    observed = Observed()
    caller = RawUdp()
    try:
        async with Node(udp_config("beta")) as beta:
            beta.spawn(slow_handler(observed), name="slow")
            request = Frame(FrameKind.REQUEST, "json", b'"work"', target="slow", call_id=1,
                            deadline_ms=100, request_id="raw-1")
            caller.send_to(encode_packet(77, 1, [encode_frame(request)]), beta.address("udp"))
            async with asyncio.timeout(10):
                await observed.cancelled.wait()
            await asyncio.sleep(0.05)
            assert beta.stats().total["messages_sent"] == 0  # no reply after cancellation
    finally:
        caller.close()


async def test_cancelling_the_callers_task_cancels_the_remote_work() -> None:
    observed = Observed()
    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(slow_handler(observed), name="slow")
        call = asyncio.ensure_future(
            alpha.ref(f"{beta.address('udp')}/slow").rpc("work", timeout=3600))
        async with asyncio.timeout(10):
            await observed.started.wait()
        call.cancel()
        async with asyncio.timeout(10):
            await observed.cancelled.wait()
        with pytest.raises(asyncio.CancelledError):
            await call


async def test_a_reply_after_the_caller_gave_up_is_dropped_and_counted() -> None:
    server = RawUdp()
    try:
        async with Node(udp_config("alpha")) as alpha:
            with pytest.raises(RpcTimeout):
                await alpha.ref(f"{server.url}/anyone").rpc("hi", timeout=0.1)
            data, source = await server.receive()
            request = next(f for f in decode_packet(data).frames if f.kind is FrameKind.REQUEST)
            reply = Frame(FrameKind.RESPONSE, "msgpack", b"\xa2ok", call_id=request.call_id)
            server.sock.sendto(encode_packet(99, 1, [encode_frame(reply)]), source)
            await wait_for(lambda: alpha.stats().total["late_replies"] == 1, "late reply")
    finally:
        server.close()


async def test_a_reply_read_in_the_turn_its_caller_was_cancelled_is_dropped_and_counted() -> None:
    server = RawUdp()
    try:
        async with Node(udp_config("alpha")) as alpha:
            call = asyncio.ensure_future(alpha.ref(f"{server.url}/anyone").rpc("hi", timeout=30))
            data, _ = await server.receive()
            request = next(f for f in decode_packet(data).frames if f.kind is FrameKind.REQUEST)
            reply = Frame(FrameKind.RESPONSE, "msgpack", b"\xa2ok", call_id=request.call_id)
            call.cancel()  # its future is cancelled now; the call closes when its task resumes
            # The reply is read before that, handed to the node as its udp socket would
            # (the private dispatcher: only this order shows the race).
            alpha._dispatcher.packet_received(
                "udp", encode_packet(99, 1, [encode_frame(reply)]), ("127.0.0.1", server.port))
            assert alpha.stats().total["late_replies"] == 1
            with pytest.raises(asyncio.CancelledError):
                await call
    finally:
        server.close()


async def test_a_remote_exception_arrives_as_remote_error_with_its_type_name() -> None:
    async def failing(ctx: ActorContext) -> None:
        async def work(request: object) -> object:
            raise KeyError("no such thing")

        async for message in ctx:
            assert isinstance(message, Rpc)
            await message.handle(work)

    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(failing, name="failing")
        with pytest.raises(RemoteError) as caught:
            await alpha.ref(f"{beta.address('udp')}/failing").rpc("x", timeout=5.0)
    assert caught.value.remote_type == "KeyError"
    assert "no such thing" in caught.value.remote_message
    assert caught.value.remote_traceback is None


async def test_tracebacks_travel_only_when_the_remote_node_is_configured_to_send_them() -> None:
    async def failing(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            await message.handle(lambda request: _raise(ValueError("bad")))

    config = dataclasses.replace(udp_config("beta"), send_tracebacks=True)
    async with Node(config) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(failing, name="failing")
        with pytest.raises(RemoteError) as caught:
            await alpha.ref(f"{beta.address('udp')}/failing").rpc("x", timeout=5.0)
    assert caught.value.remote_traceback is not None
    assert "ValueError: bad" in caught.value.remote_traceback


async def _raise(error: Exception) -> object:
    raise error


async def test_a_handler_that_answers_without_handle_sees_cancelled_after_the_deadline() -> None:
    held: list[Rpc] = []

    async def keeper(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            held.append(message)

    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(keeper, name="keeper")
        with pytest.raises(RpcTimeout):
            await alpha.ref(f"{beta.address('udp')}/keeper").rpc("x", timeout=0.1)
        await wait_for(lambda: bool(held) and held[0].cancelled, "cancelled flag")
        held[0].respond("too late")  # dropped, not an error
        await asyncio.sleep(0.05)
    assert beta.stats().total["messages_sent"] == 0


async def test_the_request_id_reaches_the_handlers_log_records_and_nested_requests(
        caplog: pytest.LogCaptureFixture) -> None:
    seen_by_back: list[str] = []
    app_log = logging.getLogger("tests.app")

    async def back(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            seen_by_back.append(message.request_id)
            message.respond("done")

    async with Node(udp_config("gamma")) as gamma, Node(udp_config("beta")) as beta, \
            Node(udp_config("alpha")) as alpha:
        gamma.spawn(back, name="back")
        back_url = f"{gamma.address('udp')}/back"

        async def front(ctx: ActorContext) -> None:
            async for message in ctx:
                assert isinstance(message, Rpc)
                app_log.info("handling %s", message.request)
                message.respond(await ctx.node.ref(back_url).rpc("nested", timeout=5.0))

        beta.spawn(front, name="front")
        caplog.handler.addFilter(RequestIdFilter())
        with caplog.at_level(logging.INFO, logger="tests.app"):
            reply = await alpha.ref(f"{beta.address('udp')}/front").rpc(
                "outer", timeout=5.0, request_id="trace-123")
    assert reply == "done"
    assert seen_by_back == ["trace-123"]
    handling = [r for r in caplog.records if r.name == "tests.app"]
    assert [getattr(r, "request_id", None) for r in handling] == ["trace-123"]


async def test_a_caller_without_a_request_id_gets_a_fresh_one_and_handlers_see_it() -> None:
    seen: list[str | None] = []

    async def recorder(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            seen.append(current_request_id())
            message.respond(message.request_id)

    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(recorder, name="recorder")
        reply = await alpha.ref(f"{beta.address('udp')}/recorder").rpc("x", timeout=5.0)
    assert isinstance(reply, str) and len(reply) == 16
    assert seen == [reply]


def test_fresh_request_ids_are_16_lowercase_hex_digits_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(1000)]  # more than one batch of draws
    assert all(len(rid) == 16 and set(rid) <= set("0123456789abcdef") for rid in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_repeat_the_request_ids_its_parent_drew() -> None:
    new_request_id()  # the parent now holds ids drawn but not yet handed out
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(reading)
        os.write(writing, " ".join(new_request_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(writing)
    with os.fdopen(reading) as pipe:
        child_ids = set(pipe.read().split())
    os.waitpid(child, 0)
    assert len(child_ids) == 8
    assert not child_ids & {new_request_id() for _ in range(8)}


async def test_two_copies_of_a_request_in_one_packet_run_once_and_are_answered_once() -> None:
    # The second frame repeats the first in all but its payload, so the receiver
    # reads it as a repeat: it is still the same call, and must not run again.
    received: list[object] = []

    async def recording(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            received.append(message.request)
            message.respond("done")

    caller = RawUdp()
    try:
        async with Node(udp_config("beta")) as beta:
            beta.spawn(recording, name="recording")
            first, second = (Frame(FrameKind.REQUEST, "json", payload, target="recording",
                                   call_id=5, deadline_ms=5000, request_id="twice")
                             for payload in (b'"first"', b'"second"'))
            caller.send_to(encode_packet(77, 1, [encode_frame(first), encode_frame(second)]),
                           beta.address("udp"))
            reply, _ = await caller.receive()
            await asyncio.sleep(0.05)
            duplicates = beta.stats().total["duplicates"]
    finally:
        caller.close()
    assert decode_packet(reply).frames[0].call_id == 5
    assert received == ["first"]
    assert duplicates == 1


async def test_a_retried_request_whose_reply_was_lost_runs_once_and_succeeds() -> None:
    runs = 0

    async def counting(ctx: ActorContext) -> None:
        nonlocal runs
        async for message in ctx:
            assert isinstance(message, Rpc)
            runs += 1
            message.respond(runs)

    async with Node(udp_config("beta")) as beta:
        beta.spawn(counting, name="counting")
        async with LossyRelay(beta.address("udp"), drop_to_client={1}) as relay, \
                Node(udp_config("alpha")) as alpha:
            reply = await alpha.ref(f"{relay.url}/counting").rpc("x", timeout=4.0, retries=3)
            assert relay.forwarded["server"] >= 2
    assert reply == 1
    assert runs == 1


async def test_a_retried_request_whose_first_copy_was_lost_succeeds() -> None:
    async with Node(udp_config("beta")) as beta:
        beta.spawn(slow_handler(Observed(), seconds=0), name="echo")
        async with LossyRelay(beta.address("udp"), drop_to_server={1}) as relay, \
                Node(udp_config("alpha")) as alpha:
            reply = await alpha.ref(f"{relay.url}/echo").rpc("x", timeout=4.0, retries=3)
    assert reply == "x"


async def test_retries_while_the_handler_still_runs_do_not_start_it_again() -> None:
    observed = Observed()
    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(slow_handler(observed, seconds=0.5), name="slow", mailbox_size=10)
        reply = await alpha.ref(f"{beta.address('udp')}/slow").rpc("x", timeout=5.0, retries=9)
    assert reply == "x"
    assert observed.runs == 1


async def test_a_handler_whose_work_is_cancelled_by_itself_answers_rpc_cancelled() -> None:
    async def self_cancelling(ctx: ActorContext) -> None:
        async def work(request: object) -> object:
            asyncio.current_task().cancel()  # type: ignore[union-attr]
            await asyncio.sleep(1)
            return None

        async for message in ctx:
            assert isinstance(message, Rpc)
            await message.handle(work)

    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(self_cancelling, name="quitter")
        with pytest.raises(RemoteError) as caught:
            await alpha.ref(f"{beta.address('udp')}/quitter").rpc("x", timeout=5.0)
    assert caught.value.remote_type == RpcCancelled.__name__


async def test_a_request_from_another_node_reaches_its_handler_as_a_whole_rpc() -> None:
    # The server makes these Rpcs without Rpc.__init__: each attribute that sets must be set.
    held: list[Rpc] = []

    async def keeper(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            held.append(message)
            message.respond(message.request)

    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(keeper, name="keeper")
        ref = alpha.ref(f"{beta.address('udp')}/keeper")
        assert await ref.rpc("hello", timeout=30.0, request_id="0123456789abcdef") == "hello"
    [rpc] = held
    assert [slot for slot in Rpc.__slots__ if not hasattr(rpc, slot)] == []
    assert (rpc.request, rpc.request_id, rpc.answered, rpc.cancelled) \
        == ("hello", "0123456789abcdef", True, False)
    assert rpc.deadline > 0 and rpc.traceparent == ""
    assert repr(rpc) == "<Rpc request_id=0123456789abcdef request='hello'>"
