"""heph-json against the real serde_json: a Rust peer built from Heph's envelope code.

The peer (heph_peer/src/main.rs) reads and writes ``Message<M>`` exactly as
Heph's net relay does, through Debian's serde_json, so what these tests show is
what a Heph node does with net-relay's bytes and what net-relay does with
Heph's. Each direction and transport is exercised with the edge cases:
structs, externally tagged enums, ``Vec<u8>``, unit, the ends of the 64-bit
ranges, integers beyond 64 bits, nesting at and past serde_json's limit, 65 KB
messages. net-relay -> Heph over tcp goes as Heph's tcp relay allows: answers
on the connection Heph opened, read as bare messages. docs/heph.md's interop
table states the same, cell by cell.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import socket
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from rust_peer import RustPeer

from nodes import collector, udp_config, wait_for
from relay_core import (
    ActorContext,
    EncodeError,
    HephMessage,
    ListenConfig,
    MalformedFrame,
    Node,
    NodeConfig,
    PeerConfig,
    message,
)
from relay_core.protocol.heph import decode_datagram
from relay_core.runtime.node import ActorFunction

pytestmark = pytest.mark.rust_peer

StartPeer = Callable[..., RustPeer]


def nested(levels: int) -> object:
    value: object = 0
    for _ in range(levels):
        value = [value]
    return value


def floats_from_bits(count: int) -> list[float]:
    """The peer's "f64_bits" case: finite floats of every magnitude, from the bit patterns
    of a 64-bit LCG (Knuth's MMIX constants, starting at 1)."""
    state, floats = 1, []
    while len(floats) < count:
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        value = struct.unpack("<d", state.to_bytes(8, "little"))[0]
        if math.isfinite(value):
            floats.append(value)
    return floats


SHAPES = ["Empty", {"Circle": {"r": 1.5}}, {"Square": 2.0}, {"Pair": [1, -2]}]
LARGE = "x" * 65_000
TEXT = 'Zoë \U0001f600 "quoted" {braces}'
SERDE_JSON_DEPTH = 126
"""The deepest message serde_json reads in Heph's envelope: its recursion limit of 128
leaves 127 nested arrays and objects, and the envelope object is one of them."""

# What Heph sends for each case of the peer, as the actor receives it.
FROM_HEPH_IN_RANGE = {
    "struct": {"name": "ada", "lang": "en"},
    "enums": SHAPES,
    "bytes": [0, 1, 127, 255],
    "unit": None,
    "u64_max": 2**64 - 1,
    "i64_min": -(2**63),
    "f64": 2.5,
    "f64_bits": floats_from_bits(1000),  # exact: ryu writes, Python reads, both exactly
    "large": LARGE,
    "text": TEXT,
}
# serde_json writes any depth (it reads 126 levels in an envelope); net-relay reads 256.
FROM_HEPH_DEEP = {"deep_126": nested(126), "deep_127": nested(127), "deep_256": nested(256)}
# Integers beyond 64 bits arrive as the nearest float, as serde_json's own Value reads them.
FROM_HEPH_BEYOND_64_BITS = {
    "u128_big": float(2**64 + 1),
    "u128_max": float(2**128 - 1),
    "i128_min": float(-(2**127)),
}


@message("interop.Greeting")
@dataclass(frozen=True)
class Greeting:
    name: str
    lang: str


def listening(*schemes: str) -> NodeConfig:
    """A node whose listeners take Heph's format for the actor "inbox"."""
    return dataclasses.replace(udp_config("python"), listen={
        scheme: ListenConfig("127.0.0.1", 0, {"heph_json": "inbox"}) for scheme in schemes})


def answering(**options: object) -> NodeConfig:
    """A node whose listeners give "inbox" each Heph message with its source (HephMessage)."""
    return dataclasses.replace(udp_config("python"), listen={
        scheme: ListenConfig("127.0.0.1", 0, {"heph_json": "inbox", "heph_with_source": True,
                                             **options})
        for scheme in ("udp", "tcp")})


def answer_with(values: list[object]) -> ActorFunction:
    """An actor that answers each Heph message's sender with ``values``, in order."""
    async def actor(ctx: ActorContext) -> None:
        async for received in ctx:
            assert isinstance(received, HephMessage)
            for value in values:
                await received.reply.send(value)
    return actor


def sending_to(peer: RustPeer) -> NodeConfig:
    return dataclasses.replace(udp_config("python"), peers={
        "heph": PeerConfig(address=f"udp://{peer.address}", options={"format": "heph-json"})})


def host_port(url: str) -> str:
    return url.partition("://")[2]


async def ask(peer: RustPeer, **command: object) -> dict[str, object]:
    """The peer's answer to ``command``, awaited in a thread so the node runs meanwhile."""
    return await asyncio.to_thread(peer.command, command)


async def from_heph(start_peer: StartPeer, cases: list[str]) -> list[object]:
    """What the actor receives when the peer sends each case over udp, in order."""
    received: list[object] = []
    peer = start_peer()
    async with Node(listening("udp")) as node:
        node.spawn(collector(received), name="inbox")
        for count, case in enumerate(cases, 1):
            await ask(peer, op="send", case=case, to=host_port(node.address("udp")))
            await wait_for(lambda count=count: len(received) == count, f"the {case} message")
    return received


# --- Heph -> net-relay, udp ---------------------------------------------------------------


async def test_what_heph_sends_over_udp_arrives_as_serde_json_wrote_it(
        start_peer: StartPeer) -> None:
    received = await from_heph(start_peer, list(FROM_HEPH_IN_RANGE))
    assert received == list(FROM_HEPH_IN_RANGE.values())


async def test_integers_heph_sends_beyond_64_bits_arrive_as_floats(
        start_peer: StartPeer) -> None:
    received = await from_heph(start_peer, list(FROM_HEPH_BEYOND_64_BITS))
    assert received == list(FROM_HEPH_BEYOND_64_BITS.values())
    assert all(type(value) is float for value in received)


async def test_heph_messages_nested_deeper_than_serde_json_reads_still_arrive(
        start_peer: StartPeer) -> None:
    received = await from_heph(start_peer, list(FROM_HEPH_DEEP))
    assert received == list(FROM_HEPH_DEEP.values())


async def test_two_heph_nodes_on_the_constant_fallback_seed_are_both_heard(
        start_peer: StartPeer) -> None:
    # Heph seeds its uuids with a constant when getrandom fails: such nodes, and each
    # restart of one, send the same uuids. Only a datagram repeated from its own source
    # is a duplicate.
    first, second = start_peer("--fallback-seed"), start_peer("--fallback-seed")
    received: list[object] = []
    async with Node(listening("udp")) as node:
        node.spawn(collector(received), name="inbox")
        to = host_port(node.address("udp"))
        sent = [await ask(peer, op="send", case="struct", to=to) for peer in (first, second)]
        await wait_for(lambda: len(received) == 2, "both messages")
        await ask(first, op="resend", to=to)  # what a network that duplicates does
        await wait_for(lambda: node.stats().total["heph_duplicates"] == 1, "the duplicate")
    assert sent[0] == sent[1]  # the very same bytes, uuid included
    assert received == [FROM_HEPH_IN_RANGE["struct"]] * 2


# --- Heph -> net-relay, tcp ---------------------------------------------------------------


async def test_what_heph_writes_back_to_back_on_tcp_arrives_in_order(
        start_peer: StartPeer) -> None:
    cases = {**FROM_HEPH_IN_RANGE, **FROM_HEPH_BEYOND_64_BITS, **FROM_HEPH_DEEP}
    received: list[object] = []
    peer = start_peer()
    async with Node(listening("tcp")) as node:
        node.spawn(collector(received), name="inbox")
        await ask(peer, op="tcp_send", cases=list(cases), to=host_port(node.address("tcp")))
        await wait_for(lambda: len(received) == len(cases), "every message")
    assert received == list(cases.values())


# --- net-relay -> Heph, udp ---------------------------------------------------------------

# What net-relay sends, and the Rust type the peer reads it as, with what that reads.
TO_HEPH = [
    (Greeting("ada", "en"), "struct", {"name": "ada", "lang": "en"}),
    (SHAPES, "enums", SHAPES),
    ([0, 1, 127, 255], "bytes", [0, 1, 127, 255]),
    (None, "unit", None),
    (2**64 - 1, "u64_max", 2**64 - 1),
    (-(2**63), "i64_min", -(2**63)),
    (2**64 - 1, "u128", str(2**64 - 1)),
    (-(2**63), "i128", str(-(2**63))),
    (2.5, "f64", 2.5),
    (LARGE, "string", LARGE),
    (TEXT, "string", TEXT),
]


async def test_what_net_relay_sends_over_udp_serde_json_reads_as_the_rust_type(
        start_peer: StartPeer) -> None:
    peer = start_peer()
    answers = []
    async with Node(sending_to(peer)) as node:
        for value, case, _ in TO_HEPH:
            await node.ref("heph/router").send(value)
            answers.append(await ask(peer, op="recv", case=case))
    assert answers == [{"ok": True, "uuid": answer["uuid"], "value": expected}
                       for answer, (_, _, expected) in zip(answers, TO_HEPH, strict=True)]


async def test_floats_net_relay_sends_reach_heph_within_two_units_in_the_last_place(
        start_peer: StartPeer) -> None:
    # net-relay writes each float's shortest exact form; Heph builds serde_json without
    # its float_roundtrip feature, whose parser is not correctly rounded.
    numbers = random.Random(7)
    floats = [numbers.random() for _ in range(500)] + [
        10.0 ** numbers.uniform(-300, 300) for _ in range(500)]
    peer = start_peer()
    async with Node(sending_to(peer)) as node:
        await node.ref("heph/router").send(floats)
        answer = await ask(peer, op="recv", case="value")
    read = answer["value"]
    assert isinstance(read, list) and len(read) == len(floats)
    assert all(abs(got - sent) <= 2 * math.ulp(sent)
               for got, sent in zip(read, floats, strict=True))


async def test_net_relay_sends_the_deepest_message_serde_json_reads(
        start_peer: StartPeer) -> None:
    peer = start_peer()
    async with Node(sending_to(peer)) as node:
        await node.ref("heph/router").send(nested(SERDE_JSON_DEPTH))
        answer = await ask(peer, op="recv", case="value")
    assert answer["ok"] is True and answer["value"] == nested(SERDE_JSON_DEPTH)


async def test_one_level_more_is_refused_at_send_as_serde_json_would_refuse_it(
        start_peer: StartPeer) -> None:
    peer = start_peer()
    async with Node(sending_to(peer)) as node:
        with pytest.raises(EncodeError, match=f"{SERDE_JSON_DEPTH} levels.*serde_json"):
            await node.ref("heph/router").send(nested(SERDE_JSON_DEPTH + 1))
    # and serde_json does refuse that depth, whatever wrote it
    deep = "[" * (SERDE_JSON_DEPTH + 1) + "0" + "]" * (SERDE_JSON_DEPTH + 1)
    read = await asyncio.to_thread(_send_raw, peer, f'{{"uuid":"{"0" * 32}","message":{deep}}}')
    assert read["ok"] is False and "recursion limit exceeded" in str(read["error"])


def _send_raw(peer: RustPeer, datagram: str) -> dict[str, object]:
    """What the peer reads of ``datagram``, sent from a plain socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(datagram.encode(), ("127.0.0.1", peer.port))
    return peer.command({"op": "recv", "case": "value"})


# --- Heph -> net-relay -> an answer back to Heph -------------------------------------------


async def test_an_answer_reaches_the_heph_node_that_wrote_over_udp(
        start_peer: StartPeer) -> None:
    # Heph routes (message, source); a net-relay actor answers the source, in an envelope.
    peer = start_peer()
    answers = []
    async with Node(answering()) as node:
        node.spawn(answer_with([value for value, _, _ in TO_HEPH]), name="inbox")
        await ask(peer, op="send", case="struct", to=host_port(node.address("udp")))
        for _, case, _ in TO_HEPH:
            answers.append(await ask(peer, op="recv", case=case))
    assert answers == [{"ok": True, "uuid": answer["uuid"], "value": expected}
                       for answer, (_, _, expected) in zip(answers, TO_HEPH, strict=True)]


async def test_answers_reach_heph_on_the_tcp_connection_it_opened_as_bare_messages(
        start_peer: StartPeer) -> None:
    # Heph's tcp relay connects out, writes envelopes and reads bare messages (a
    # StreamDeserializer of M) on that same connection.
    rows = [*TO_HEPH, (nested(SERDE_JSON_DEPTH + 1), "value", nested(SERDE_JSON_DEPTH + 1))]
    peer = start_peer()
    async with Node(answering()) as node:
        node.spawn(answer_with([value for value, _, _ in rows]), name="inbox")
        answer = await ask(peer, op="tcp_talk", cases=["struct"],
                           read=[case for _, case, _ in rows], to=host_port(node.address("tcp")))
    assert answer["read"] == [{"ok": True, "value": expected} for _, _, expected in rows]


async def test_an_answer_deeper_than_serde_json_reads_is_refused_at_send(
        start_peer: StartPeer) -> None:
    refused: list[EncodeError] = []

    async def actor(ctx: ActorContext) -> None:
        async for received in ctx:
            assert isinstance(received, HephMessage)
            try:
                await received.reply.send(nested(SERDE_JSON_DEPTH + 2))
            except EncodeError as exc:
                refused.append(exc)
            await received.reply.send("after")

    peer = start_peer()
    async with Node(answering()) as node:
        node.spawn(actor, name="inbox")
        answer = await ask(peer, op="tcp_talk", cases=["unit"], read=["string"],
                           to=host_port(node.address("tcp")))
    assert answer["read"] == [{"ok": True, "value": "after"}]
    assert "127 levels" in str(refused[0])


# --- what serde_json takes and net-relay refuses ------------------------------------------


async def test_serde_json_keeps_the_last_of_repeated_keys_where_net_relay_refuses(
        start_peer: StartPeer) -> None:
    # Heph reads a repeated key inside `message` into a Value or HashMap, the last one
    # winning; a derived struct refuses it. net-relay refuses it everywhere (docs/heph.md).
    peer = start_peer()
    inner = '{"name":"ada","lang":"en","name":"bob"}'
    datagram = f'{{"uuid":"{"0" * 32}","message":{inner}}}'
    as_value = await asyncio.to_thread(_send_raw, peer, datagram)
    as_struct = await asyncio.to_thread(_send_raw_as, peer, datagram, "struct")
    assert as_value == {"ok": True, "uuid": str(uuid.UUID(int=0)),
                        "value": {"name": "bob", "lang": "en"}}
    assert as_struct["ok"] is False and "duplicate field `name`" in str(as_struct["error"])
    with pytest.raises(MalformedFrame, match="repeats the key 'name'"):
        decode_datagram(datagram.encode(), 1 << 16)


def _send_raw_as(peer: RustPeer, datagram: str, case: str) -> dict[str, object]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(datagram.encode(), ("127.0.0.1", peer.port))
    return peer.command({"op": "recv", "case": case})
