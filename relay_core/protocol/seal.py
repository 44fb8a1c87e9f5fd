"""Sealed packets: whole-packet AEAD with a pre-shared key, without any I/O.

A sealed packet keeps the 24-byte header of a plain one, with flag bit 0 set
and the key id where the checksum was, followed by the ChaCha20-Poly1305
ciphertext of its body and its 16-byte tag; docs/protocol.md section 9 gives
the layout, the key schedule, the handshake and test vectors. The rules this
module keeps:

- each direction between two incarnations has its own key, HKDF-SHA256 of the
  pre-shared key with the sender's and the receiver's incarnations as info, and
  the sender's sequence number is the nonce; sequence numbers never repeat
  within a sender incarnation, so no nonce is ever used twice under one key, as
  long as the caller never seals two bodies under one (incarnation, sequence);
- a packet therefore opens only at the receiver incarnation it was sealed for:
  not at another node holding the key, not at the sender, not at the receiver
  once it has restarted;
- a hello (flag bit 1) is sealed for receiver incarnation 0, so that any key
  holder can open it; it carries no frames, and asks for an answer (flag bit
  2) that names the answering incarnation and the hello's sequence number;
  both are 8-byte bodies, so an answer is never larger than what it answers;
- opening reads nothing but the magic, version, flags, key id, incarnation and
  sequence (to pick the key and the nonce) before the tag verifies; every
  failure to authenticate raises :class:`Unauthenticated`, and the returned
  incarnation and sequence are authenticated, safe to show the duplicate window;
- derived keys live in a bounded LRU, and only a packet that authenticated,
  or frames being sealed, add one, so forged packets cost one HKDF each but
  cannot evict genuine keys or grow memory (an answer to a forged packet is
  sealed for whatever incarnation it named, under a key not kept);
- no secret appears in a repr or an error message.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import struct
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import (
    ConfigError,
    MalformedFrame,
    MessageTooLarge,
    Unauthenticated,
    UnsupportedVersion,
)
from .wire import MAGIC, MAX_SEQUENCE, PACKET_HEADER_SIZE, SEALED, WIRE_VERSION, is_sealed
from .wire_read import decode_frames_compact, decode_packet_compact, messages_in_frames

__all__ = [
    "ANSWER",
    "HANDSHAKE_PACKET_SIZE",
    "HELLO",
    "KEY_SIZE",
    "SEALED",
    "TAG_SIZE",
    "KeyRing",
    "Sealer",
    "Unauthenticated",
    "answer_body",
    "answered_sequence",
    "hello_body",
    "is_handshake",
    "is_sealed",
    "parse_key",
    "sealed_header",
]

KEY_SIZE: Final = 32
TAG_SIZE: Final = 16
MAX_KEY_ID: Final = 0xFFFFFFFF
HKDF_SALT: Final = b"net-relay v1 sealed"
HELLO: Final = 0x02
"""Packet flag bit 1: a hello, sealed for receiver incarnation 0, asking for an answer."""
ANSWER: Final = 0x04
"""Packet flag bit 2: an answer to a hello (or to a packet sealed for a gone incarnation)."""
HANDSHAKE_BODY_SIZE: Final = 8
HANDSHAKE_PACKET_SIZE: Final = PACKET_HEADER_SIZE + HANDSHAKE_BODY_SIZE + TAG_SIZE
_RESERVED: Final = 0xFF & ~(SEALED | HELLO | ANSWER)
_HEADER: Final = struct.Struct("!2sBBIQQ")  # magic, version, flags, key id, incarnation, sequence
_PAIR: Final = struct.Struct("!QQ")  # HKDF info: sender incarnation, receiver incarnation
_NONCE_PREFIX: Final = bytes(4)
_MIN_SIZE: Final = PACKET_HEADER_SIZE + TAG_SIZE
_MAX_BODY: Final = 2**31 - 1 - TAG_SIZE  # what the AEAD library accepts in one call
_KEY_RULE: Final = (
    f"a pre-shared key is {KEY_SIZE} random bytes written as 64 hexadecimal digits "
    "or as standard base64 (44 characters ending in '='), "
    "for example from `openssl rand -hex 32`"
)


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRing:
    """The pre-shared keys a node holds for one peer (or group), by key id.

    Several keys let both ends rotate without a gap: add the new key on both
    ends, then switch ``send_key_id`` to it, then drop the old one.
    """

    keys: Mapping[int, bytes] = dataclasses.field(repr=False)
    """Key id (u32) -> 32-byte pre-shared key; every one of them opens packets."""
    send_key_id: int
    """The id of the key that :meth:`Sealer.seal` uses."""

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            _check_key_id(key_id)
            if not isinstance(key, bytes) or len(key) != KEY_SIZE:
                raise ConfigError(f"key id {key_id}: {_KEY_RULE}")
        if self.send_key_id not in self.keys:
            raise ConfigError(
                f"send_key_id {self.send_key_id} names none of the keys in the "
                f"ring (key ids {_id_list(self.keys)})"
            )
        # A private copy: a caller's later change to its dict cannot swap keys under us.
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))


def _check_key_id(key_id: int) -> None:
    if not isinstance(key_id, int) or not 0 <= key_id <= MAX_KEY_ID:
        raise ConfigError(f"key id {key_id!r} is not an integer from 0 to {MAX_KEY_ID} (u32)")


def _id_list(keys: Mapping[int, bytes]) -> str:
    return ", ".join(str(key_id) for key_id in sorted(keys)) or "none"


def parse_key(text: str, where: str) -> bytes:
    """Return the 32-byte key ``text`` writes as 64 hex digits or base64.

    Raise :class:`ConfigError` naming ``where`` (a config table and key) and
    what is allowed; the message never repeats the text, which may be secret.
    """
    text = text.strip()
    if len(text) == 2 * KEY_SIZE:
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise ConfigError(
                f"{where}: 64 characters but not all hexadecimal; {_KEY_RULE}"
            ) from None
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ConfigError(
            f"{where}: {len(text)} characters that are neither 64 hexadecimal "
            f"digits nor base64; {_KEY_RULE}"
        ) from None
    if len(key) != KEY_SIZE:
        raise ConfigError(f"{where}: base64 of {len(key)} bytes, not {KEY_SIZE}; {_KEY_RULE}")
    return key


def sealed_key_id(packet: bytes) -> int:
    """The key id a sealed packet names (call after :func:`is_sealed` or ``open``)."""
    return int.from_bytes(packet[4:8], "big")


def sealed_header(packet: bytes) -> tuple[int, int, int, int]:
    """``(flags, key id, sender incarnation, sequence)`` of a sealed packet's header, NOT
    authenticated: for choosing what to do with a packet that did not open."""
    if len(packet) < PACKET_HEADER_SIZE:
        return 0, 0, 0, 0
    _, _, flags, key_id, incarnation, sequence = _HEADER.unpack_from(packet)
    return flags, key_id, incarnation, sequence


def is_handshake(packet: bytes) -> bool:
    """Whether a sealed packet claims to be a hello or an answer (no crypto)."""
    return len(packet) > 3 and bool(packet[3] & (HELLO | ANSWER))


def messages_in_packet(packet: bytes, sealer: Sealer | None, receiver: int) -> int:
    """How many messages (requests and replies included) ``packet`` holds, to count them
    when it is dropped: a sealed one is read only with ``sealer`` (opened as sealed for
    incarnation ``receiver``), a handshake holds none, and one that cannot be read
    counts as the one message it was at least sent for."""
    try:
        if not is_sealed(packet):
            return messages_in_frames(decode_packet_compact(packet)[2])
        if is_handshake(packet):
            return 0
        if sealer is not None:
            return messages_in_frames(decode_frames_compact(sealer.open(packet, receiver)[2]))
    except MalformedFrame:
        pass
    return 1


def hello_body() -> bytes:
    """What a hello carries: 8 zero bytes, so that its answer is never larger than it."""
    return bytes(HANDSHAKE_BODY_SIZE)


def answer_body(answered: int) -> bytes:
    """What an answer carries: the sequence number of the packet it answers."""
    return answered.to_bytes(HANDSHAKE_BODY_SIZE, "big")


def answered_sequence(body: bytes) -> int:
    """The sequence number an opened answer's body names."""
    return int.from_bytes(body, "big")


def _derive_key(psk: bytes, sender: int, receiver: int) -> ChaCha20Poly1305:
    """The AEAD of one direction: HKDF-SHA256(psk, salt, info=sender || receiver)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=HKDF_SALT,
        info=_PAIR.pack(sender, receiver),
    )
    return ChaCha20Poly1305(hkdf.derive(psk))


def _nonce(sequence: int) -> bytes:
    return _NONCE_PREFIX + sequence.to_bytes(8, "big")


class Sealer:
    """Seals and opens packets with the keys of one :class:`KeyRing`.

    To change the ring (rotate keys), build a new Sealer; derived keys are
    cheap to derive again.
    """

    __slots__ = ("_cache", "_max_cached", "_ring")

    def __init__(self, ring: KeyRing, max_cached_incarnations: int = 4096) -> None:
        if max_cached_incarnations < 1:
            raise ConfigError(
                f"max_cached_incarnations is {max_cached_incarnations}; it must be at least 1"
            )
        self._ring = ring
        self._max_cached = max_cached_incarnations
        self._cache: OrderedDict[tuple[int, int, int], ChaCha20Poly1305] = OrderedDict()

    @property
    def cached_keys(self) -> int:
        """How many derived keys are held now (never above ``max_cached_incarnations``)."""
        return len(self._cache)

    def holds(self, key_id: int) -> bool:
        """Whether the ring has a key under ``key_id``."""
        return key_id in self._ring.keys

    def seal(self, sender: int, receiver: int, sequence: int, body: bytes,
             flags: int = SEALED) -> bytes:
        """Return the sealed packet from incarnation ``sender`` to ``receiver`` carrying
        ``body``: the frames, joined (``flags`` SEALED), or a handshake's 8 bytes
        (``SEALED | HELLO``, for receiver 0, or ``SEALED | ANSWER``).

        Raise :class:`MalformedFrame` for an incarnation or sequence outside
        1 to 2**64-1, a body the flags do not allow, or reserved flags;
        :class:`MessageTooLarge` for a body the AEAD cannot take in one piece.
        """
        if not 0 < sender <= MAX_SEQUENCE:
            raise MalformedFrame(f"incarnation {sender} is outside 1 to 2**64-1")
        if not 0 < sequence <= MAX_SEQUENCE:
            raise MalformedFrame(f"sequence number {sequence} is outside 1 to 2**64-1")
        _check_sealable(flags, receiver, body)
        if len(body) > _MAX_BODY:
            raise MessageTooLarge(len(body), _MAX_BODY, "the most one sealed packet can carry")
        key_id = self._ring.send_key_id
        header = _HEADER.pack(MAGIC, WIRE_VERSION, flags, key_id, sender, sequence)
        aead = self._cached(key_id, sender, receiver)
        if aead is None:
            aead = self._derive(key_id, sender, receiver)
            if flags == SEALED:  # a handshake's key is used once (an answer's may be forged's)
                self._remember(key_id, sender, receiver, aead)
        return header + aead.encrypt(_nonce(sequence), body, header)

    def open(self, packet: bytes, receiver: int) -> tuple[int, int, bytes, int]:
        """Return ``(sender incarnation, sequence, body, flags)`` of a sealed packet sealed
        for incarnation ``receiver`` (a hello: for any), all authenticated.

        Raise :class:`Unauthenticated` for a sealed packet that is too short,
        names a key id the ring lacks, or fails its tag (sealed for another
        receiver incarnation included); :class:`MalformedFrame`
        (:class:`UnsupportedVersion` for another version) for bytes that are not
        a sealed packet, and for an authenticated one that breaks a header rule.
        """
        _check_sealed(packet)
        if len(packet) < _MIN_SIZE:
            raise Unauthenticated(
                f"sealed packet of {len(packet)} bytes is shorter than its "
                f"{PACKET_HEADER_SIZE}-byte header and {TAG_SIZE}-byte tag"
            )
        _, _, flags, key_id, sender, sequence = _HEADER.unpack_from(packet)
        if flags & HELLO:
            receiver = 0
        cached = self._cached(key_id, sender, receiver)
        aead = cached if cached is not None else self._derive(key_id, sender, receiver)
        body = _decrypt(aead, key_id, sequence, packet)
        if cached is None:  # only now: a forged packet must not evict a genuine key
            self._remember(key_id, sender, receiver, aead)
        _check_opened(flags, sender, sequence, body)
        return sender, sequence, body, flags

    def _cached(self, key_id: int, sender: int, receiver: int) -> ChaCha20Poly1305 | None:
        key = (key_id, sender, receiver)
        aead = self._cache.get(key)
        if aead is not None:
            self._cache.move_to_end(key)
        return aead

    def _derive(self, key_id: int, sender: int, receiver: int) -> ChaCha20Poly1305:
        psk = self._ring.keys.get(key_id)
        if psk is None:
            raise Unauthenticated(
                f"sealed packet names key id {key_id}, which this node does "
                f"not hold (it holds key ids {_id_list(self._ring.keys)})"
            )
        return _derive_key(psk, sender, receiver)

    def _remember(self, key_id: int, sender: int, receiver: int,
                  aead: ChaCha20Poly1305) -> ChaCha20Poly1305:
        if len(self._cache) >= self._max_cached:
            self._cache.popitem(last=False)
        self._cache[key_id, sender, receiver] = aead
        return aead


def _check_sealable(flags: int, receiver: int, body: bytes) -> None:
    """The rules of what may be sealed, by kind: frames, a hello or an answer."""
    if flags & _RESERVED or not flags & SEALED:
        raise MalformedFrame(f"packet flags {flags:#04x}: bit 0 must be set and bits 3 to 7 "
                             "are reserved")
    kind = flags & (HELLO | ANSWER)
    if kind == HELLO | ANSWER:
        raise MalformedFrame("a packet cannot be both a hello and an answer")
    if kind and len(body) != HANDSHAKE_BODY_SIZE:
        raise MalformedFrame(f"a handshake carries {HANDSHAKE_BODY_SIZE} bytes, not {len(body)}")
    if kind == HELLO and receiver:
        raise MalformedFrame("a hello is sealed for receiver incarnation 0 (any receiver)")
    if kind != HELLO and not 0 < receiver <= MAX_SEQUENCE:
        raise MalformedFrame(f"receiver incarnation {receiver} is outside 1 to 2**64-1: only "
                             "a hello is sealed for receiver incarnation 0")
    if kind == ANSWER and not answered_sequence(body):
        raise MalformedFrame("an answer names the sequence it answers; sequence 0 is none")
    if not body:
        raise MalformedFrame("a packet carries at least one frame; the body is empty")


def _check_sealed(packet: bytes) -> None:
    """Raise :class:`MalformedFrame` unless ``packet`` claims to be a sealed v1 packet."""
    if is_sealed(packet):
        return
    if packet[:2] != MAGIC:
        raise MalformedFrame(
            f"not a net-relay packet: it starts {bytes(packet[:2]).hex()!r}, "
            "not the magic 4e52 ('NR')"
        )
    if len(packet) > 2 and packet[2] != WIRE_VERSION:
        raise UnsupportedVersion(
            f"packet is wire version {packet[2]}; this node speaks {WIRE_VERSION}"
        )
    raise MalformedFrame(
        "packet is not sealed (flag bit 0 is clear, or the header is cut "
        "short); only sealed packets can be opened"
    )


def _decrypt(aead: ChaCha20Poly1305, key_id: int, sequence: int, packet: bytes) -> bytes:
    """Verify the tag of ``packet`` and return its plaintext; the header is the additional data."""
    view = memoryview(packet)  # spares two copies of the packet
    try:
        return aead.decrypt(_nonce(sequence), view[PACKET_HEADER_SIZE:], view[:PACKET_HEADER_SIZE])
    except InvalidTag:
        raise Unauthenticated(
            f"sealed packet fails authentication under key id {key_id}: forged, damaged, "
            "sealed with another key, or sealed for another receiver (another node, or "
            "this node before it restarted)"
        ) from None


def _check_opened(flags: int, incarnation: int, sequence: int, body: bytes) -> None:
    """The header rules of a packet that did authenticate: what only a key holder can break."""
    if flags & _RESERVED:
        raise MalformedFrame(
            f"sealed packet flags are {flags:#04x}; bits 3 to 7 are reserved and must be 0"
        )
    if flags & HELLO and flags & ANSWER:
        raise MalformedFrame("sealed packet claims to be both a hello and an answer")
    if not incarnation:
        raise MalformedFrame("sender incarnation 0 is not allowed")
    if not sequence:
        raise MalformedFrame("sequence number 0 is not allowed; sequences start at 1")
    if flags != SEALED:
        if len(body) != HANDSHAKE_BODY_SIZE:
            raise MalformedFrame(f"sealed handshake body is {len(body)} bytes, not "
                                 f"{HANDSHAKE_BODY_SIZE}")
        if flags & ANSWER and not answered_sequence(body):
            raise MalformedFrame("sealed answer answers sequence 0, which no packet has")
    elif not body:
        raise MalformedFrame("sealed packet has a header and a tag but no frame")
