"""What the relay promises on a bad network, checked across two real nodes.

Alpha sends to beta over UDP loopback through the fault adapter, configured the
way a user would: a ``fault`` table in the peer's options (outbound faults
towards beta) and in the listener's options (inbound faults on alpha). Every
profile is seeded, so a failure replays the same way.

Each message carries a unique number and a CRC-32 of its content, so the
receiver can tell a message delivered twice, or delivered damaged, from a good
one. Waits are for counts the nodes report, bounded by a generous limit; no
assertion depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import collections
import random
import zlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from nodes import udp_config, wait_for, with_peers
from relay_core import ActorContext, ListenConfig, Node, NodeConfig, PeerConfig, RpcTimeout
from relay_core.faults.adapter import DEFAULT_MAX_IN_FLIGHT
from relay_core.tools.demo import echo

MESSAGES = 3000
NASTY = {"drop": 0.05, "duplicate": 0.3, "reorder": 0.1, "seed": 7}


def signed(number: int, body: bytes) -> dict[str, object]:
    """A message whose receiver can check it arrived whole."""
    return {"n": number, "body": body, "crc": zlib.crc32(number.to_bytes(8, "big") + body)}


def intact(message: object) -> bool:
    if not isinstance(message, dict):
        return False
    number, body = message.get("n"), message.get("body")
    if not isinstance(number, int) or not isinstance(body, bytes):
        return False
    return message.get("crc") == zlib.crc32(number.to_bytes(8, "big") + body)


@dataclass
class Inbox:
    """What beta's sink saw: deliveries per message number, and anything damaged."""

    deliveries: collections.Counter[int] = field(default_factory=collections.Counter)
    damaged: list[object] = field(default_factory=list)

    async def sink(self, ctx: ActorContext) -> None:
        async for message in ctx:
            if intact(message):
                assert isinstance(message, dict)
                self.deliveries[message["n"]] += 1
            else:
                self.damaged.append(message)

    @property
    def handled(self) -> int:
        return self.deliveries.total() + len(self.damaged)


@asynccontextmanager
async def faulty_pair(
    outbound: Mapping[str, object], inbound: Mapping[str, object] | None = None
) -> AsyncIterator[tuple[Node, Node]]:
    """Beta, and alpha with ``outbound`` faults towards beta and ``inbound`` ones on itself."""
    async with Node(udp_config("beta", mailbox_size=2 * MESSAGES)) as beta:
        listen = {"fault": inbound} if inbound else {}
        alpha_config = NodeConfig(
            name="alpha", listen={"udp": ListenConfig("127.0.0.1", 0, options=listen)})
        peer = PeerConfig(address=beta.address("udp"), options={"fault": outbound})
        async with Node(with_peers(alpha_config, beta=peer)) as alpha:
            yield alpha, beta


async def send_numbered(alpha: Node, count: int) -> None:
    """Send ``count`` signed messages, one per event-loop turn (so about one per packet)."""
    bodies = random.Random(1)
    ref = alpha.ref("beta/sink")
    for number in range(count):
        await ref.send(signed(number, bodies.randbytes(bodies.randrange(8, 200))))
        await asyncio.sleep(0)


async def settle(alpha: Node, beta: Node, inbox: Inbox) -> None:
    """Wait until beta has taken every datagram alpha's adapter let out, and the sink is done."""
    await wait_for(lambda: alpha.stats().faults["udp"]["in_flight"] == 0, "adapter drained")
    sent, faults = alpha.stats().peers["beta"]["packets_sent"], alpha.stats().faults["udp"]
    datagrams = sent - faults["dropped"] - faults["overflow"] + faults["duplicated"]
    await wait_for(lambda: beta.stats().total["packets_received"] >= datagrams, "datagrams")
    await wait_for(lambda: inbox.handled == beta.stats().total["messages_received"], "sink")


async def still_answers(beta: Node) -> None:
    """A node with no faults of its own gets an RPC answered by beta."""
    async with Node(udp_config("gamma")) as gamma:
        reply = await gamma.ref(f"{beta.address('udp')}/echo").rpc("still there?", timeout=10.0)
    assert reply == "still there?"


@pytest.mark.parametrize("corrupt", [0.0, 0.05], ids=["without-corruption", "with-corruption"])
async def test_under_duplication_reordering_and_loss_no_message_arrives_twice_or_damaged(
    corrupt: float,
) -> None:
    inbox = Inbox()
    async with faulty_pair({**NASTY, "corrupt": corrupt}) as (alpha, beta):
        beta.spawn(inbox.sink, name="sink")
        beta.spawn(echo, name="echo")
        await send_numbered(alpha, MESSAGES)
        await settle(alpha, beta, inbox)
        assert [number for number, times in inbox.deliveries.items() if times > 1] == []
        assert inbox.damaged == []
        faults, received = alpha.stats().faults["udp"], beta.stats().total
        assert faults["duplicated"] > 0 and faults["reordered"] > 0 and faults["dropped"] > 0
        assert received["duplicates"] > 0  # the duplicates reached beta, which dropped them
        assert inbox.deliveries.total() > MESSAGES // 2  # loss stays near the rates set
        assert (received["corrupt"] > 0) == (corrupt > 0)
        await still_answers(beta)


async def test_memory_stays_bounded_in_the_adapter_and_the_duplicate_window() -> None:
    inbox = Inbox()
    async with faulty_pair({**NASTY, "corrupt": 0.05, "delay": 0.001, "jitter": 0.001}) as (
        alpha, beta
    ):
        beta.spawn(inbox.sink, name="sink")
        await send_numbered(alpha, MESSAGES)
        await settle(alpha, beta, inbox)
        faults, window = alpha.stats().faults["udp"], beta.stats().senders
    assert 0 < faults["peak_in_flight"] <= DEFAULT_MAX_IN_FLIGHT
    assert 1 <= window <= beta.config.max_senders


async def test_rpcs_under_loss_succeed_or_time_out_cleanly_and_retries_carry_most() -> None:
    lossy = {"drop": 0.2}
    async with faulty_pair({**lossy, "seed": 11}, {**lossy, "seed": 12}) as (alpha, beta):
        beta.spawn(echo, name="echo")
        ref = alpha.ref("beta/echo")
        calls = [ref.rpc({"call": index}, timeout=4.0, retries=3) for index in range(100)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert alpha.stats().faults["udp"]["dropped"] > 0
    for index, outcome in enumerate(outcomes):
        assert outcome == {"call": index} or isinstance(outcome, RpcTimeout), outcome
    answered = sum(outcome == {"call": index} for index, outcome in enumerate(outcomes))
    assert answered > len(outcomes) // 2
