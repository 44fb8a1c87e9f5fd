"""Bad input at a live node: each kind is dropped, counted under its own name, and logged
at a bounded rate, and the node goes on answering."""

from __future__ import annotations

import dataclasses
import logging
import struct
import zlib

import pytest
import zstandard

from nodes import RawUdp, udp_config, wait_for
from relay_core import Node
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet
from relay_core.tools.demo import echo

LIMIT = 64 * 1024


def resealed(packet: bytearray) -> bytes:
    """``packet`` with its checksum recomputed, so the damage is judged past the checksum."""
    struct.pack_into("!I", packet, 4, zlib.crc32(bytes(packet[8:]), zlib.crc32(bytes(packet[:4]))))
    return bytes(packet)


def message_packet(payload: bytes, codec: str = "msgpack", compressor: str = "",
                   target: str = "echo", sequence: int = 1) -> bytes:
    frame = Frame(FrameKind.MESSAGE, codec, payload, compressor, target)
    return encode_packet(424242, sequence, [encode_frame(frame)])


def bombs() -> dict[str, tuple[bytes, str]]:
    """Each bad input, and the counter it must land in."""
    bomb = zstandard.ZstdCompressor().compress(b"\0" * (LIMIT * 16))
    huge_length = bytearray(message_packet(b"\xc0", sequence=3))
    struct.pack_into("!I", huge_length, 24 + 20, 0xFFFFFFF0)
    bad_target = bytearray(message_packet(b"\xc0", target="ab", sequence=4))
    bad_target[-3:-1] = b"\xff\xfe"
    return {
        "decompression bomb": (message_packet(bomb, compressor="zstd", sequence=1), "oversize"),
        "deep nesting": (message_packet(b"\x91" * 60_000 + b"\xc0", sequence=2), "undecodable"),
        "huge declared length": (resealed(huge_length), "malformed"),
        "invalid UTF-8 target": (resealed(bad_target), "malformed"),
        "invalid UTF-8 payload": (message_packet(b'"\xff\xfe"', codec="json", sequence=5),
                                  "undecodable"),
        "unknown codec": (message_packet(b"\xc0", codec="nosuch", sequence=6),
                          "unsupported_codec"),
        "damaged in transit": (bytes(message_packet(b"\xc0", sequence=7)[:-1]) + b"\x01",
                               "corrupt"),
    }


@pytest.mark.parametrize("case", list(bombs()))
async def test_each_bad_input_is_dropped_and_counted_under_its_name(case: str) -> None:
    data, counter = bombs()[case]
    attacker = RawUdp()
    config = dataclasses.replace(udp_config("target"), max_message_size=LIMIT)
    try:
        async with Node(config) as node, Node(udp_config("client")) as client:
            node.spawn(echo, name="echo")
            attacker.send_to(data, node.address("udp"))
            await wait_for(lambda: node.stats().total[counter] == 1, counter)
            reply = await client.ref(f"{node.address('udp')}/echo").rpc("alive?", timeout=5.0)
            assert reply == "alive?"
            total = node.stats().total
    finally:
        attacker.close()
    assert total["messages_received"] == 1  # only the RPC got through
    others = {"oversize", "undecodable", "malformed", "unsupported_codec", "corrupt"} - {counter}
    assert all(total[name] == 0 for name in others)


async def test_a_flood_of_bad_packets_logs_a_bounded_number_of_lines(
        caplog: pytest.LogCaptureFixture) -> None:
    attacker = RawUdp()
    try:
        async with Node(udp_config("target")) as node:
            with caplog.at_level(logging.WARNING, logger="relay_core.node"):
                for index in range(300):
                    attacker.send_to(b"NR\x01\x00garbage" + bytes([index % 256]), node.address("udp"))
                await wait_for(lambda: node.stats().total["malformed"] == 300, "the flood")
    finally:
        attacker.close()
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert 1 <= len(lines) <= 2
