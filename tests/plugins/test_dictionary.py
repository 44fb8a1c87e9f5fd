"""Trained zstd dictionaries: `net-relay train-dict`, and nodes that share one (or lack it)."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import subprocess
import sys
from pathlib import Path

import pytest

from nodes import RawUdp, udp_config, wait_for
from relay_core import ActorContext, Node, PeerConfig
from relay_core.protocol.wire_read import decode_packet


def order(rng: random.Random) -> dict[str, object]:
    return {"type": "order.created", "order_id": f"ord-{rng.randrange(10**9):09d}",
            "customer": f"cust-{rng.randrange(10**6)}", "amount_cents": rng.randrange(100, 10**5),
            "currency": rng.choice(["EUR", "USD", "GBP"]), "status": "pending",
            "tags": ["web", "eu-west-1"]}


@pytest.fixture(scope="module")
def dictionary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("dictionary")
    rng = random.Random(5)
    samples = directory / "samples.jsonl"
    samples.write_text("".join(json.dumps(order(rng)) + "\n" for _ in range(1500)))
    out = directory / "orders.dict"
    result = subprocess.run([sys.executable, "-m", "relay_core.tools.cli", "train-dict", str(samples),
                             "--out", str(out), "--size", "8192"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "with zstd and this dictionary" in result.stdout
    return out


def with_dictionary(name: str, dictionary: Path | None) -> dict[str, object]:
    options: dict[str, object] = {"min_size": 0}
    if dictionary is not None:
        options["dictionary"] = str(dictionary)
    return {"zstd": options}


async def test_a_shared_dictionary_shrinks_small_messages_on_the_wire(dictionary: Path) -> None:
    tap = RawUdp()
    rng = random.Random(9)
    sizes = {}
    try:
        for label, chosen in (("plain zstd", None), ("dictionary", dictionary)):
            config = dataclasses.replace(
                udp_config("sender"), compressor_options=with_dictionary("sender", chosen),
                peers={"tap": PeerConfig(address=tap.url, compressor="zstd")})
            async with Node(config) as sender:
                await sender.ref("tap/orders").send(order(rng))
                frame = decode_packet((await tap.receive())[0]).frames[0]
                sizes[label] = len(frame.payload)
    finally:
        tap.close()
    assert sizes["dictionary"] * 2 < sizes["plain zstd"]


async def test_nodes_naming_the_same_dictionary_exchange_messages(dictionary: Path) -> None:
    received: list[object] = []

    async def sink(ctx: ActorContext) -> None:
        async for message in ctx:
            received.append(message)

    rng = random.Random(3)
    sent = order(rng)
    receiver_config = dataclasses.replace(udp_config("receiver"),
                                          compressor_options=with_dictionary("r", dictionary))
    async with Node(receiver_config) as receiver:
        receiver.spawn(sink, name="orders")
        sender_config = dataclasses.replace(
            udp_config("sender"), compressor_options=with_dictionary("s", dictionary),
            peers={"receiver": PeerConfig(address=receiver.address("udp"), compressor="zstd")})
        async with Node(sender_config) as sender:
            await sender.ref("receiver/orders").send(sent)
            await wait_for(lambda: bool(received), "delivery")
    assert received == [sent]


async def test_a_receiver_without_the_dictionary_drops_the_frame_and_says_which_one(
        dictionary: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with Node(udp_config("receiver")) as receiver:
        sender_config = dataclasses.replace(
            udp_config("sender"), compressor_options=with_dictionary("s", dictionary),
            peers={"receiver": PeerConfig(address=receiver.address("udp"), compressor="zstd")})
        with caplog.at_level(logging.WARNING, logger="relay_core.node"):
            async with Node(sender_config) as sender:
                await sender.ref("receiver/orders").send(order(random.Random(4)))
                await wait_for(lambda: receiver.stats().total["undecodable"] == 1, "refusal")
    assert "dictionary" in caplog.text


def test_train_dict_refuses_a_samples_file_that_is_not_json_lines(tmp_path: Path) -> None:
    samples = tmp_path / "bad.jsonl"
    samples.write_text("{not json\n")
    result = subprocess.run([sys.executable, "-m", "relay_core.tools.cli", "train-dict", str(samples)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "bad.jsonl:1" in result.stderr and "Traceback" not in result.stderr
