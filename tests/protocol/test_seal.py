"""Sealed packets: what sealing produces, what opening accepts, and what it refuses.

Expected packets are built here independently of relay_core.protocol.seal, straight
from the recipe in docs/protocol.md section 9 (HKDF-SHA256 and
ChaCha20-Poly1305 from ``cryptography``), so a mistake in the key schedule,
nonce or additional data cannot hide in both places. The section's test
vectors are parsed and checked both ways.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relay_core
from relay_core import ConfigError, MalformedFrame, MessageTooLarge, UnsupportedVersion
from relay_core.protocol import seal as _seal
from relay_core.protocol.seal import (
    ANSWER,
    HELLO,
    SEALED,
    KeyRing,
    Sealer,
    Unauthenticated,
    answer_body,
    answered_sequence,
    hello_body,
    is_sealed,
    parse_key,
)
from relay_core.protocol.window import DuplicateFilter, Verdict
from relay_core.protocol.wire import Frame, FrameKind, encode_frame, encode_packet
from relay_core.protocol.wire_read import decode_packet

RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
U64 = 2**64 - 1
KEY_A = bytes(range(32))
KEY_B = bytes(range(0xA0, 0xC0))
BODY = encode_frame(
    Frame(FrameKind.MESSAGE, "msgpack", bytes.fromhex("81a46e616d65a3616461"), target="greeter")
)
MARKER = b"net-relay plaintext marker 32 b!"
RECEIVER = 0x5EC0_0000_0000_0001
"""The receiver incarnation the tests seal for, unless they say otherwise."""

incarnations = st.integers(1, U64)
sequences = st.integers(1, U64)
bodies = st.binary(min_size=1, max_size=300)
psks = st.binary(min_size=32, max_size=32)
key_ids = st.integers(0, 2**32 - 1)


def reference_seal(
    psk: bytes, key_id: int, incarnation: int, sequence: int, body: bytes, flags: int = 1,
    receiver: int = RECEIVER,
) -> bytes:
    """Seal by the recipe of docs/protocol.md section 9, without relay_core.protocol.seal."""
    header = b"NR" + bytes([1, flags]) + struct.pack("!IQQ", key_id, incarnation, sequence)
    return header + ChaCha20Poly1305(reference_key(psk, incarnation, receiver)).encrypt(
        reference_nonce(sequence), body, header
    )


def reference_key(psk: bytes, sender: int, receiver: int) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"net-relay v1 sealed",
        info=struct.pack("!QQ", sender, receiver),
    )
    return hkdf.derive(psk)


def reference_nonce(sequence: int) -> bytes:
    return bytes(4) + struct.pack("!Q", sequence)


def sealer(keys: dict[int, bytes] | None = None, send: int = 1, **options: int) -> Sealer:
    return Sealer(KeyRing(keys or {1: KEY_A}, send), **options)


def flip(packet: bytes, bit: int) -> bytes:
    damaged = bytearray(packet)
    damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


# Sealing and opening


@RELAXED
@given(psk=psks, key_id=key_ids, incarnation=incarnations, sequence=sequences, body=bodies)
def test_opening_a_sealed_packet_gives_back_what_was_sealed(
    psk: bytes, key_id: int, incarnation: int, sequence: int, body: bytes
) -> None:
    packet = sealer({key_id: psk}, key_id).seal(incarnation, RECEIVER, sequence, body)
    opened = sealer({key_id: psk}, key_id).open(packet, RECEIVER)
    assert opened == (incarnation, sequence, body, SEALED)


@RELAXED
@given(psk=psks, key_id=key_ids, incarnation=incarnations, sequence=sequences, body=bodies)
def test_sealing_follows_the_documented_recipe(
    psk: bytes, key_id: int, incarnation: int, sequence: int, body: bytes
) -> None:
    packet = sealer({key_id: psk}, key_id).seal(incarnation, RECEIVER, sequence, body)
    assert packet == reference_seal(psk, key_id, incarnation, sequence, body)


def test_a_sealed_packet_is_its_header_then_ciphertext_and_a_16_byte_tag() -> None:
    packet = sealer({7: KEY_A}, 7).seal(0x0102030405060708, RECEIVER, 9, BODY)
    assert packet[:24] == bytes.fromhex("4e520101 00000007 0102030405060708 0000000000000009")
    assert len(packet) == 24 + len(BODY) + 16


def test_the_ciphertext_does_not_contain_the_plaintext() -> None:
    body = encode_frame(Frame(FrameKind.MESSAGE, "msgpack", MARKER, target="greeter"))
    packet = sealer().seal(1, RECEIVER, 1, body)
    assert MARKER in body
    assert MARKER not in packet
    assert b"greeter" not in packet and b"msgpack" not in packet


def test_each_incarnation_and_each_sequence_number_seals_differently() -> None:
    sealing = sealer()
    packets = [
        sealing.seal(incarnation, RECEIVER, sequence, BODY)[24:]
        for incarnation in (1, 2)
        for sequence in (1, 2)
    ]
    assert len(set(packets)) == 4


def test_is_sealed_reads_only_the_header_flag() -> None:
    assert is_sealed(sealer().seal(1, RECEIVER, 1, BODY))
    assert is_sealed(b"NR\x01\x03")
    assert not is_sealed(encode_packet(1, 1, [BODY]))
    assert not is_sealed(b"NR\x02\x01" + bytes(60))
    assert not is_sealed(b"XY\x01\x01" + bytes(60))
    assert not is_sealed(b"NR\x01")


def test_a_node_without_keys_rejects_a_sealed_packet_as_malformed() -> None:
    with pytest.raises(MalformedFrame, match="flags are 0x01"):
        decode_packet(sealer().seal(1, RECEIVER, 1, BODY))


# Refusing what does not authenticate


@RELAXED
@given(body=bodies, data=st.data())
def test_any_bit_flipped_after_the_first_four_bytes_makes_the_packet_unauthenticated(
    body: bytes, data: st.DataObject
) -> None:
    packet = sealer().seal(5, RECEIVER, 6, body)
    bit = data.draw(st.integers(32, len(packet) * 8 - 1), label="bit")
    with pytest.raises(Unauthenticated):
        sealer().open(flip(packet, bit), RECEIVER)


@pytest.mark.parametrize("bit", range(32))
def test_any_bit_flipped_in_the_first_four_bytes_is_refused_too(bit: int) -> None:
    damaged = flip(sealer().seal(5, RECEIVER, 6, BODY), bit)
    with pytest.raises(MalformedFrame):
        sealer().open(damaged, RECEIVER)


def test_a_flipped_sealed_flag_is_refused_as_not_sealed_and_a_reserved_one_as_forged() -> None:
    packet = sealer().seal(5, RECEIVER, 6, BODY)
    with pytest.raises(MalformedFrame, match="not sealed"):
        sealer().open(flip(packet, 24), RECEIVER)
    with pytest.raises(Unauthenticated):
        sealer().open(flip(packet, 25), RECEIVER)


@pytest.mark.parametrize("keep", [4, 8, 23, 24, 39, 40, 24 + len(BODY), 24 + len(BODY) + 15])
def test_a_cut_packet_is_unauthenticated(keep: int) -> None:
    with pytest.raises(Unauthenticated):
        sealer().open(sealer().seal(5, RECEIVER, 6, BODY)[:keep], RECEIVER)


def test_a_packet_with_bytes_appended_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated):
        sealer().open(sealer().seal(5, RECEIVER, 6, BODY) + b"\x00", RECEIVER)


def test_a_packet_under_a_key_id_the_ring_lacks_is_unauthenticated_naming_the_id() -> None:
    packet = sealer({7: KEY_A}, 7).seal(5, RECEIVER, 6, BODY)
    with pytest.raises(Unauthenticated, match=r"key id 7, .*holds key ids 1, 2\)") as caught:
        sealer({1: KEY_A, 2: KEY_B}).open(packet, RECEIVER)
    assert KEY_A.hex() not in str(caught.value)


def test_a_packet_sealed_with_another_key_under_the_same_id_is_unauthenticated() -> None:
    packet = sealer({1: KEY_B}).seal(5, RECEIVER, 6, BODY)
    with pytest.raises(Unauthenticated, match="fails authentication under key id 1"):
        sealer({1: KEY_A}).open(packet, RECEIVER)


@pytest.mark.parametrize(
    ("packet", "error", "message"),
    [
        pytest.param(encode_packet(1, 1, [BODY]), MalformedFrame, "not sealed", id="plain"),
        pytest.param(b"", MalformedFrame, "not a net-relay packet", id="empty"),
        pytest.param(b"XY\x01\x01" + bytes(60), MalformedFrame, "magic 4e52", id="foreign"),
        pytest.param(b"NR\x02\x01" + bytes(60), UnsupportedVersion, "version 2", id="version-2"),
        pytest.param(b"NR\x01", MalformedFrame, "not sealed", id="cut-before-flags"),
    ],
)
def test_opening_what_is_not_a_sealed_packet_says_so(
    packet: bytes, error: type[MalformedFrame], message: str
) -> None:
    with pytest.raises(MalformedFrame, match=message) as caught:
        sealer().open(packet, RECEIVER)
    assert type(caught.value) is error


def test_unauthenticated_is_a_malformed_frame_and_a_value_error() -> None:
    assert issubclass(Unauthenticated, MalformedFrame)
    assert issubclass(Unauthenticated, ValueError)


# Header rules that only a key holder can break: checked once the tag verifies


@pytest.mark.parametrize(
    ("incarnation", "sequence", "body", "flags", "message"),
    [
        pytest.param(5, 6, BODY, 0x09, "bits 3 to 7 are reserved", id="reserved-flag"),
        pytest.param(0, 6, BODY, 0x01, "incarnation 0", id="incarnation-0"),
        pytest.param(5, 0, BODY, 0x01, "sequence number 0", id="sequence-0"),
        pytest.param(5, 6, b"", 0x01, "no frame", id="no-body"),
    ],
)
def test_an_authentic_packet_that_breaks_a_header_rule_is_malformed(
    incarnation: int, sequence: int, body: bytes, flags: int, message: str
) -> None:
    packet = reference_seal(KEY_A, 1, incarnation, sequence, body, flags)
    with pytest.raises(MalformedFrame, match=message) as caught:
        sealer().open(packet, RECEIVER)
    assert type(caught.value) is MalformedFrame


@pytest.mark.parametrize(
    ("incarnation", "sequence", "body", "message"),
    [
        pytest.param(0, 1, BODY, "incarnation 0 is outside", id="incarnation-0"),
        pytest.param(2**64, 1, BODY, "incarnation 18446744073709551616", id="incarnation-big"),
        pytest.param(1, 0, BODY, "sequence number 0 is outside", id="sequence-0"),
        pytest.param(1, 2**64, BODY, "sequence number 18446744073709551616", id="sequence-big"),
        pytest.param(1, 1, b"", "at least one frame", id="no-body"),
    ],
)
def test_sealing_refuses_what_the_format_does_not_allow(
    incarnation: int, sequence: int, body: bytes, message: str
) -> None:
    with pytest.raises(MalformedFrame, match=message):
        sealer().seal(incarnation, RECEIVER, sequence, body)


def test_sealing_refuses_a_body_the_aead_cannot_take(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_seal, "_MAX_BODY", 10)
    with pytest.raises(MessageTooLarge, match="11 bytes exceeds the limit of 10"):
        sealer().seal(1, RECEIVER, 1, bytes(11))


# Binding: a packet opens only at the receiver incarnation it was sealed for


@RELAXED
@given(sender=incarnations, receiver=incarnations, other=incarnations, sequence=sequences,
       body=bodies)
def test_a_packet_opens_only_at_the_receiver_incarnation_it_was_sealed_for(
    sender: int, receiver: int, other: int, sequence: int, body: bytes
) -> None:
    packet = sealer().seal(sender, receiver, sequence, body)
    assert sealer().open(packet, receiver) == (sender, sequence, body, SEALED)
    if other != receiver:
        with pytest.raises(Unauthenticated, match="sealed for another receiver"):
            sealer().open(packet, other)


@RELAXED
@given(a=incarnations, b=incarnations, sequence=sequences, body=bodies)
def test_the_two_directions_between_two_incarnations_seal_under_different_keys(
    a: int, b: int, sequence: int, body: bytes
) -> None:
    a_to_b = sealer().seal(a, b, sequence, body)
    b_to_a = sealer().seal(b, a, sequence, body)
    if a != b:
        assert a_to_b[24:] != b_to_a[24:]
        with pytest.raises(Unauthenticated):  # A's packet to B, shown to A as if from B
            sealer().open(a_to_b[:8] + b.to_bytes(8, "big") + a_to_b[16:], a)


def test_a_packet_sealed_for_a_receiver_is_refused_by_that_receivers_next_incarnation() -> None:
    packet = sealer().seal(5, RECEIVER, 1, BODY)
    with pytest.raises(Unauthenticated):
        sealer().open(packet, RECEIVER + 1)


def test_sealing_frames_for_receiver_incarnation_0_is_refused() -> None:
    with pytest.raises(MalformedFrame, match="receiver incarnation 0"):
        sealer().seal(5, 0, 1, BODY)


# The handshake: a hello anyone with the key can open, an answer bound to both ends


@RELAXED
@given(sender=incarnations, receiver=incarnations, sequence=sequences)
def test_a_hello_opens_at_any_receiver_incarnation_and_is_a_fixed_size(
    sender: int, receiver: int, sequence: int
) -> None:
    hello = sealer().seal(sender, 0, sequence, hello_body(), SEALED | HELLO)
    assert len(hello) == 48
    assert hello == reference_seal(KEY_A, 1, sender, sequence, bytes(8), 0x03, receiver=0)
    assert sealer().open(hello, receiver) == (sender, sequence, hello_body(), SEALED | HELLO)


@RELAXED
@given(sender=incarnations, receiver=incarnations, sequence=sequences, echo=sequences)
def test_an_answer_carries_the_sequence_it_answers_and_is_never_larger_than_a_hello(
    sender: int, receiver: int, sequence: int, echo: int
) -> None:
    answer = sealer().seal(sender, receiver, sequence, answer_body(echo), SEALED | ANSWER)
    assert len(answer) == 48
    assert answer == reference_seal(KEY_A, 1, sender, sequence, echo.to_bytes(8, "big"), 0x05,
                                    receiver=receiver)
    opened_sender, opened_sequence, body, flags = sealer().open(answer, receiver)
    assert (opened_sender, opened_sequence, flags) == (sender, sequence, SEALED | ANSWER)
    assert answered_sequence(body) == echo


def test_an_answer_opens_only_at_the_incarnation_it_answers() -> None:
    answer = sealer().seal(9, RECEIVER, 1, answer_body(3), SEALED | ANSWER)
    with pytest.raises(Unauthenticated):
        sealer().open(answer, RECEIVER + 1)


@pytest.mark.parametrize(
    ("receiver", "body", "flags", "message"),
    [
        pytest.param(RECEIVER, bytes(8), HELLO, "hello is sealed for receiver incarnation 0", id="hello-to"),
        pytest.param(0, bytes(9), HELLO, "8 bytes", id="hello-long"),
        pytest.param(RECEIVER, bytes(7), ANSWER, "8 bytes", id="answer-short"),
        pytest.param(RECEIVER, bytes(8), ANSWER, "sequence 0", id="answer-to-0"),
        pytest.param(RECEIVER, BODY, HELLO | ANSWER, "both", id="both"),
        pytest.param(RECEIVER, BODY, 0x09, "reserved", id="reserved"),
    ],
)
def test_sealing_refuses_a_handshake_the_format_does_not_allow(
    receiver: int, body: bytes, flags: int, message: str
) -> None:
    with pytest.raises(MalformedFrame, match=message):
        sealer().seal(5, receiver, 1, body, flags | SEALED)


@pytest.mark.parametrize(
    ("receiver", "body", "flags", "message"),
    [
        pytest.param(0, bytes(9), 0x03, "handshake body is 9 bytes", id="hello-long"),
        pytest.param(RECEIVER, bytes(4), 0x05, "handshake body is 4 bytes", id="answer-short"),
        pytest.param(RECEIVER, bytes(8), 0x05, "answers sequence 0", id="answer-to-0"),
        pytest.param(0, BODY, 0x07, "both a hello and an answer", id="both"),
    ],
)
def test_an_authentic_handshake_that_breaks_a_rule_is_malformed(
    receiver: int, body: bytes, flags: int, message: str
) -> None:
    packet = reference_seal(KEY_A, 1, 5, 6, body, flags, receiver=receiver)
    with pytest.raises(MalformedFrame, match=message) as caught:
        sealer().open(packet, RECEIVER)
    assert type(caught.value) is MalformedFrame


# Key rotation


def test_a_ring_with_two_keys_opens_packets_sealed_with_either() -> None:
    old, new = sealer({1: KEY_A}, 1), sealer({2: KEY_B}, 2)
    receiver = sealer({1: KEY_A, 2: KEY_B}, 2)
    assert receiver.open(old.seal(5, RECEIVER, 1, BODY), RECEIVER) == (5, 1, BODY, SEALED)
    assert receiver.open(new.seal(5, RECEIVER, 2, BODY), RECEIVER) == (5, 2, BODY, SEALED)


def test_a_sealer_seals_with_the_rings_send_key() -> None:
    packet = sealer({1: KEY_A, 2: KEY_B}, send=2).seal(5, RECEIVER, 1, BODY)
    assert packet[4:8] == (2).to_bytes(4, "big")
    assert sealer({2: KEY_B}, 2).open(packet, RECEIVER) == (5, 1, BODY, SEALED)


def test_once_the_old_key_is_dropped_its_packets_are_refused() -> None:
    packet = sealer({1: KEY_A, 2: KEY_B}, send=1).seal(5, RECEIVER, 1, BODY)
    with pytest.raises(Unauthenticated, match="key id 1"):
        sealer({2: KEY_B}, 2).open(packet, RECEIVER)


# Derived keys: a bounded cache that forged packets cannot touch


def count_derivations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the incarnation of every key derivation from now on."""
    derived: list[int] = []
    original = _seal._derive_key

    def counting(psk: bytes, sender: int, receiver: int) -> ChaCha20Poly1305:
        derived.append(sender)
        return original(psk, sender, receiver)

    monkeypatch.setattr(_seal, "_derive_key", counting)
    return derived


def test_derived_keys_are_cached_up_to_the_bound() -> None:
    sender, receiver = sealer(), sealer(max_cached_incarnations=4)
    for incarnation in range(1, 11):
        receiver.open(sender.seal(incarnation, RECEIVER, 1, BODY), RECEIVER)
    assert receiver.cached_keys == 4


def test_a_known_incarnation_needs_no_new_derivation(monkeypatch: pytest.MonkeyPatch) -> None:
    sender, receiver = sealer(), sealer()
    packets = [sender.seal(5, RECEIVER, sequence, BODY) for sequence in range(1, 4)]
    derived = count_derivations(monkeypatch)
    for packet in packets:
        receiver.open(packet, RECEIVER)
    assert derived == [5]


def test_the_least_recently_used_key_is_the_one_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    sender, receiver = sealer(), sealer(max_cached_incarnations=2)
    receiver.open(sender.seal(1, RECEIVER, 1, BODY), RECEIVER)
    receiver.open(sender.seal(2, RECEIVER, 1, BODY), RECEIVER)
    receiver.open(sender.seal(1, RECEIVER, 2, BODY), RECEIVER)  # 1 is now more recent than 2
    receiver.open(sender.seal(3, RECEIVER, 1, BODY), RECEIVER)  # so 2 makes room
    derived = count_derivations(monkeypatch)
    receiver.open(sender.seal(1, RECEIVER, 3, BODY), RECEIVER)
    receiver.open(sender.seal(2, RECEIVER, 2, BODY), RECEIVER)
    assert derived == [2]


def test_forged_packets_from_new_incarnations_evict_no_genuine_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sender, forger, receiver = sealer(), sealer({1: KEY_B}), sealer(max_cached_incarnations=2)
    receiver.open(sender.seal(1, RECEIVER, 1, BODY), RECEIVER)
    for incarnation in range(100, 110):
        with pytest.raises(Unauthenticated):
            receiver.open(forger.seal(incarnation, RECEIVER, 1, BODY), RECEIVER)
    assert receiver.cached_keys == 1
    derived = count_derivations(monkeypatch)
    receiver.open(sender.seal(1, RECEIVER, 2, BODY), RECEIVER)
    assert derived == []


def test_the_cache_bound_must_be_at_least_one() -> None:
    with pytest.raises(ConfigError, match="max_cached_incarnations is 0; it must be at least 1"):
        sealer(max_cached_incarnations=0)


# With the duplicate window: replays are refused, forgeries cannot move it


def test_a_replayed_sealed_packet_is_a_duplicate_for_the_window() -> None:
    packet = sealer().seal(5, RECEIVER, 1, BODY)
    receiver, window = sealer(), DuplicateFilter()
    verdicts = [window.check(*receiver.open(packet, RECEIVER)[:2]) for _ in range(2)]
    assert verdicts == [Verdict.ACCEPTED, Verdict.DUPLICATE]


def test_a_forged_sequence_number_never_reaches_the_window() -> None:
    sender, receiver, window = sealer(), sealer(), DuplicateFilter(window_size=64)
    genuine = sender.seal(5, RECEIVER, 1, BODY)
    forged = genuine[:16] + (2**40).to_bytes(8, "big") + genuine[24:]
    with pytest.raises(Unauthenticated):
        receiver.open(forged, RECEIVER)
    assert window.check(*receiver.open(genuine, RECEIVER)[:2]) is Verdict.ACCEPTED


# Key rings


@pytest.mark.parametrize(
    ("keys", "send", "message"),
    [
        pytest.param(
            {1: bytes(31)}, 1, "key id 1: a pre-shared key is 32 random bytes", id="short"
        ),
        pytest.param({1: "k" * 32}, 1, "key id 1: a pre-shared key", id="not-bytes"),
        pytest.param({-1: KEY_A}, -1, "key id -1 is not an integer from 0", id="negative-id"),
        pytest.param({2**32: KEY_A}, 2**32, "key id 4294967296 is not", id="big-id"),
        pytest.param({1: KEY_A}, 2, r"send_key_id 2 names none .*\(key ids 1\)", id="send-id"),
        pytest.param({}, 0, r"send_key_id 0 names none .*\(key ids none\)", id="empty"),
    ],
)
def test_a_key_ring_refuses_bad_keys_and_ids(
    keys: dict[int, bytes], send: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        KeyRing(keys, send)


def test_a_key_ring_never_shows_its_keys() -> None:
    ring = KeyRing({1: KEY_A}, 1)
    assert KEY_A.hex() not in repr(ring) and repr(KEY_A) not in repr(ring)


def test_a_key_ring_keeps_its_own_copy_of_the_keys() -> None:
    keys = {1: KEY_A}
    ring = KeyRing(keys, 1)
    keys[1] = KEY_B
    assert ring.keys[1] == KEY_A


# Keys written in configuration


@given(key=psks)
def test_a_key_reads_from_hex_or_base64(key: bytes) -> None:
    assert parse_key(key.hex(), "peers.beta") == key
    assert parse_key(key.hex().upper(), "peers.beta") == key
    assert parse_key(base64.b64encode(key).decode(), "peers.beta") == key


def test_surrounding_whitespace_around_a_key_is_ignored() -> None:
    assert parse_key(f"  {KEY_A.hex()}\n", "peers.beta") == KEY_A


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(KEY_A.hex()[:-1], "63 characters that are neither", id="63-hex-digits"),
        pytest.param("g" + KEY_A.hex()[1:], "64 characters but not all hexadecimal", id="not-hex"),
        pytest.param(base64.b64encode(bytes(16)).decode(), "base64 of 16 bytes", id="16-bytes"),
        pytest.param(base64.b64encode(bytes(33)).decode(), "base64 of 33 bytes", id="33-bytes"),
        pytest.param("secret!", "7 characters that are neither", id="garbage"),
        pytest.param("", "base64 of 0 bytes", id="empty"),
    ],
)
def test_a_key_that_is_not_32_bytes_of_hex_or_base64_is_refused_clearly(
    text: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_key(text, "peers.beta.key")
    message = str(caught.value)
    assert message.startswith(f"peers.beta.key: {problem}")
    assert "64 hexadecimal digits or as standard base64" in message
    assert not text or text not in message


# The test vectors of docs/protocol.md section 9

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BLOCK = re.compile(r"^```text\n(sealed-vector:.*?)^```", re.DOTALL | re.MULTILINE)
ACCEPTED_KEYS = {
    "psk", "key_id", "flags", "sender", "receiver", "sequence", "body", "derived_key", "nonce"
}
REJECTED_KEYS = {"psk", "key_id", "receiver", "rejected"}
BYTE_FIELDS = {"psk", "body", "derived_key", "nonce", "hex"}


@dataclasses.dataclass
class SealedVector:
    name: str
    fields: dict[str, str]
    data: bytes

    def number(self, key: str) -> int:
        return int(self.fields[key], 0)

    def bytes(self, key: str) -> bytes:
        return bytes.fromhex(self.fields[key])


def parse_sealed(block: str) -> SealedVector:
    fields: dict[str, str] = {}
    key = ""
    for line in block.splitlines():
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        if line[0].isspace():  # continues the field above
            fields[key] += content
            continue
        key, _, value = content.partition(":")
        assert key not in fields, f"field {key!r} given twice"
        fields[key] = value.strip()
    name = fields.pop("sealed-vector")
    expected = REJECTED_KEYS if "rejected" in fields else ACCEPTED_KEYS
    assert fields.keys() == expected | {"hex"}, f"{name}: fields {sorted(fields)}"
    for key in BYTE_FIELDS & fields.keys():
        fields[key] = fields[key].replace(" ", "")
    return SealedVector(name, fields, bytes.fromhex(fields.pop("hex")))


SEALED_VECTORS = [parse_sealed(block) for block in BLOCK.findall(PROTOCOL.read_text("utf-8"))]
SEALED_ACCEPTED = [pytest.param(v, id=v.name) for v in SEALED_VECTORS if "rejected" not in v.fields]
SEALED_REJECTED = [pytest.param(v, id=v.name) for v in SEALED_VECTORS if "rejected" in v.fields]


def vector_sealer(vector: SealedVector) -> Sealer:
    return sealer({vector.number("key_id"): vector.bytes("psk")}, vector.number("key_id"))


def test_the_page_has_the_sealed_vectors_an_implementer_needs() -> None:
    assert len(SEALED_ACCEPTED) >= 2
    assert len(SEALED_REJECTED) >= 1
    kinds = {v.number("flags") for v in SEALED_VECTORS if "flags" in v.fields}
    assert kinds == {SEALED, SEALED | HELLO, SEALED | ANSWER}
    assert len({v.name for v in SEALED_VECTORS}) == len(SEALED_VECTORS)
    assert any(v.number("key_id") >= 2**31 for v in SEALED_VECTORS)


@pytest.mark.parametrize("vector", SEALED_ACCEPTED)
def test_sealing_the_documented_fields_gives_the_documented_bytes(vector: SealedVector) -> None:
    packet = vector_sealer(vector).seal(
        vector.number("sender"), vector.number("receiver"), vector.number("sequence"),
        vector.bytes("body"), vector.number("flags")
    )
    assert packet.hex() == vector.data.hex()


@pytest.mark.parametrize("vector", SEALED_ACCEPTED)
def test_opening_the_documented_bytes_gives_the_documented_fields(vector: SealedVector) -> None:
    expected = (vector.number("sender"), vector.number("sequence"), vector.bytes("body"),
                vector.number("flags"))
    # A hello opens at any receiver incarnation: it is sealed for receiver 0.
    receiver = vector.number("receiver") or RECEIVER
    assert vector_sealer(vector).open(vector.data, receiver) == expected


@pytest.mark.parametrize("vector", SEALED_ACCEPTED)
def test_the_documented_key_and_nonce_follow_the_recipe(vector: SealedVector) -> None:
    psk, sender, receiver = vector.bytes("psk"), vector.number("sender"), vector.number("receiver")
    assert reference_key(psk, sender, receiver).hex() == vector.fields["derived_key"]
    assert reference_nonce(vector.number("sequence")).hex() == vector.fields["nonce"]


@pytest.mark.parametrize("vector", SEALED_ACCEPTED)
def test_the_documented_bodies_are_real_frames_or_handshakes(vector: SealedVector) -> None:
    flags, body = vector.number("flags"), vector.bytes("body")
    if flags == SEALED:
        assert decode_packet(encode_packet(1, 1, [body])).frames
    elif flags & HELLO:
        assert body == hello_body()
    else:
        assert answered_sequence(body) > 0


@pytest.mark.parametrize("vector", SEALED_REJECTED)
def test_the_documented_bad_sealed_packets_are_rejected_with_the_documented_error(
    vector: SealedVector,
) -> None:
    expected = getattr(relay_core, vector.fields["rejected"], None) or getattr(
        _seal, vector.fields["rejected"]
    )
    with pytest.raises(MalformedFrame) as caught:
        vector_sealer(vector).open(vector.data, vector.number("receiver"))
    assert type(caught.value) is expected
