"""The test vectors in docs/protocol.md hold for the code, in both directions.

Every fenced ``text`` block of the page that starts with ``vector:`` is a vector:
either fields and the bytes they encode to, or bytes with the error that
rejecting them raises. The parser is strict (every field, no unknown keys), so a
vector cannot silently stop testing something.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
import zstandard

import relay_core
from relay_core.protocol.wire import (
    PACKET_HEADER_SIZE,
    Frame,
    FrameKind,
    Packet,
    encode_frame,
    encode_packet,
)
from relay_core.protocol.wire_read import decode_packet

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BLOCK = re.compile(r"^```text\n(vector:.*?)^```", re.DOTALL | re.MULTILINE)
HEADER_SECTION = re.compile(
    r"^## 2\. Packet header \((\d+) bytes\)\n\n(.*?)\n\n", re.DOTALL | re.MULTILINE
)
TABLE_ROW = re.compile(r"^\| (\d+) +\| (\d+) +\| ([^|]+?) *\|$", re.MULTILINE)
STRING_FIELDS = {"codec", "compressor", "target", "request_id", "traceparent"}
FRAME_FIELDS = set(Frame._fields)


@dataclasses.dataclass
class Vector:
    name: str
    data: bytes
    packet: Packet | None = None
    rejected: str = ""


def without_comment(text: str) -> str:
    return text.split("#", 1)[0].strip()


def frame_value(key: str, text: str) -> object:
    if key in STRING_FIELDS:
        value, end = json.JSONDecoder().raw_decode(text)
        assert not without_comment(text[end:]), f"junk after {key}: {text!r}"
        return value
    text = without_comment(text)
    if key == "kind":
        return FrameKind[text]
    if key == "payload":
        return bytes.fromhex(text)
    if key == "deadline_ms" and text == "none":
        return None
    return int(text, 0)


def parse(block: str) -> Vector:
    top: dict[str, str] = {}
    frames: list[dict[str, Any]] = []
    hex_text: list[str] = []
    section, last_key = "", ""
    for line in block.splitlines():
        content = line.strip()
        if not content or content.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            section, _, value = content.partition(":")
            if section == "frame":
                frames.append({})
            elif section != "hex":
                top[section] = value.strip()
        elif section == "hex":
            hex_text.append(without_comment(content))
        elif indent >= 4:  # a payload continued on the next line
            frames[-1][last_key] += bytes.fromhex(without_comment(content))
        else:
            last_key, _, value = content.partition(":")
            assert last_key in FRAME_FIELDS, f"unknown frame field {last_key!r}"
            frames[-1][last_key] = frame_value(last_key, value.strip())
    return build(top, frames, bytes.fromhex("".join(hex_text)))


def build(top: dict[str, str], frames: list[dict[str, Any]], data: bytes) -> Vector:
    name = top.pop("vector")
    if "rejected" in top:
        assert top.keys() == {"rejected"} and not frames, f"{name}: a rejection has only bytes"
        return Vector(name, data, rejected=top["rejected"])
    assert top.keys() == {"incarnation", "sequence"}, f"{name}: keys {sorted(top)}"
    for fields in frames:
        assert fields.keys() == FRAME_FIELDS, f"{name}: frame fields {sorted(fields)}"
    packet = Packet(
        int(top["incarnation"], 0),
        int(top["sequence"], 0),
        tuple(Frame(**fields) for fields in frames),
    )
    return Vector(name, data, packet)


PAGE = PROTOCOL.read_text(encoding="utf-8")
VECTORS = [parse(block) for block in BLOCK.findall(PAGE)]
ACCEPTED = [pytest.param(v, id=v.name) for v in VECTORS if v.packet is not None]
REJECTED = [pytest.param(v, id=v.name) for v in VECTORS if v.rejected]


def packet_of(vector: Vector) -> Packet:
    assert vector.packet is not None
    return vector.packet


def test_the_page_has_the_vectors_an_implementer_needs() -> None:
    packets = [packet_of(v) for v in VECTORS if not v.rejected]
    frames = [frame for packet in packets for frame in packet.frames]
    assert {frame.kind for frame in frames} == set(FrameKind)
    assert any(len(packet.frames) >= 2 for packet in packets)
    assert any(f.request_id and f.deadline_ms is not None for f in frames)
    assert any(f.compressor for f in frames)
    assert len(REJECTED) >= 3
    assert "ChecksumMismatch" in {v.rejected for v in VECTORS}
    assert len({v.name for v in VECTORS}) == len(VECTORS), "vector names must be unique"


@pytest.mark.parametrize("vector", ACCEPTED)
def test_encoding_the_documented_fields_gives_the_documented_bytes(vector: Vector) -> None:
    packet = packet_of(vector)
    frames = [encode_frame(frame) for frame in packet.frames]
    assert encode_packet(packet.incarnation, packet.sequence, frames).hex() == vector.data.hex()


@pytest.mark.parametrize("vector", ACCEPTED)
def test_decoding_the_documented_bytes_gives_the_documented_fields(vector: Vector) -> None:
    assert decode_packet(vector.data) == vector.packet


@pytest.mark.parametrize("vector", REJECTED)
def test_the_documented_bad_packets_are_rejected_with_the_documented_error(
    vector: Vector,
) -> None:
    expected = getattr(relay_core, vector.rejected)
    with pytest.raises(relay_core.MalformedFrame) as caught:
        decode_packet(vector.data)
    assert type(caught.value) is expected


@pytest.mark.parametrize("vector", ACCEPTED)
def test_the_documented_payloads_are_real_encodings(vector: Vector) -> None:
    for frame in packet_of(vector).frames:
        if frame.kind is FrameKind.CANCEL:
            continue
        assert frame.codec == "msgpack"
        payload = frame.payload
        if frame.compressor:
            assert frame.compressor == "zstd"
            payload = zstandard.ZstdDecompressor().decompress(payload)
        message = msgpack.unpackb(payload)
        assert isinstance(message, dict)
        if frame.kind is FrameKind.ERROR:
            assert message.keys() == {"code", "type", "message"}


def header_table() -> tuple[int, list[tuple[int, int, str]]]:
    """The packet header's documented size and its (offset, size, field) rows."""
    match = HEADER_SECTION.search(PAGE)
    assert match, "section 2 of the page must be the packet header table"
    rows = [(int(off), int(size), field) for off, size, field in TABLE_ROW.findall(match[2])]
    return int(match[1]), rows


def test_the_documented_header_table_has_the_codes_header_size() -> None:
    size, rows = header_table()
    assert size == PACKET_HEADER_SIZE
    ends = [0] + [offset + length for offset, length, _ in rows]
    assert [offset for offset, _, _ in rows] == ends[:-1], "the rows must follow each other"
    assert ends[-1] == PACKET_HEADER_SIZE


def documented_checksum_of(data: bytes) -> tuple[int, int]:
    """The checksum a packet states, and the one the table's rule computes for it."""
    (offset, size) = next((o, s) for o, s, field in header_table()[1] if "checksum" in field)
    stated = int.from_bytes(data[offset : offset + size], "big")
    return stated, zlib.crc32(data[:offset] + data[offset + size :])


@pytest.mark.parametrize("vector", [pytest.param(v, id=v.name) for v in VECTORS])
def test_only_the_vector_about_damage_carries_a_wrong_checksum(vector: Vector) -> None:
    stated, computed = documented_checksum_of(vector.data)
    assert (stated != computed) == (vector.rejected == "ChecksumMismatch")
