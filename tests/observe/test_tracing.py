"""W3C trace context travels with requests, with and without OpenTelemetry."""

from __future__ import annotations

import pytest

from nodes import RawUdp, udp_config
from relay_core import ActorContext, Node, Rpc
from relay_core.observe import tracing as _tracing
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet

otel_trace = pytest.importorskip("opentelemetry.trace", reason="opentelemetry-api not installed")
from opentelemetry import context as otel_context

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"


def recording_actor(seen: list[tuple[str, int]]):  # type: ignore[no-untyped-def]
    async def actor(ctx: ActorContext) -> None:
        async for message in ctx:
            assert isinstance(message, Rpc)
            current = otel_trace.get_current_span().get_span_context()
            seen.append((message.traceparent, current.trace_id))
            message.respond("ok")
    return actor


async def test_the_callers_open_telemetry_span_becomes_the_handlers_remote_parent() -> None:
    seen: list[tuple[str, int]] = []
    span = otel_trace.NonRecordingSpan(otel_trace.SpanContext(
        TRACE_ID, SPAN_ID, is_remote=False, trace_flags=otel_trace.TraceFlags(1)))
    async with Node(udp_config("beta")) as beta, Node(udp_config("alpha")) as alpha:
        beta.spawn(recording_actor(seen), name="traced")
        token = otel_context.attach(otel_trace.set_span_in_context(span))
        try:
            await alpha.ref(f"{beta.address('udp')}/traced").rpc("x", timeout=5.0)
        finally:
            otel_context.detach(token)
    assert seen == [(TRACEPARENT, TRACE_ID)]


async def test_without_open_telemetry_a_received_traceparent_is_passed_on_to_nested_requests(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tracing, "propagate", None)
    seen: list[tuple[str, int]] = []
    caller = RawUdp()
    try:
        async with Node(udp_config("gamma")) as gamma, Node(udp_config("beta")) as beta:
            gamma.spawn(recording_actor(seen), name="back")
            back_url = f"{gamma.address('udp')}/back"

            async def front(ctx: ActorContext) -> None:
                async for message in ctx:
                    assert isinstance(message, Rpc)
                    message.respond(await ctx.node.ref(back_url).rpc("nested", timeout=5.0))

            beta.spawn(front, name="front")
            request = Frame(FrameKind.REQUEST, "json", b'"outer"', target="front", call_id=1,
                            deadline_ms=5000, traceparent=TRACEPARENT)
            caller.send_to(encode_packet(5, 1, [encode_frame(request)]), beta.address("udp"))
            await caller.receive()
    finally:
        caller.close()
    assert [traceparent for traceparent, _ in seen] == [TRACEPARENT]
