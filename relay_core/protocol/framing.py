"""Packets on a byte stream: each one preceded by its length (u32, big-endian).

Stream transports (TCP, QUIC streams) carry the same packets as datagrams do;
this splits a stream back into them. Sans-IO: bytes in, packets out. A reader
feeds it every chunk it reads.

Invariants:

- a declared length above ``max_packet_size`` is rejected before any of it is
  buffered, so a peer cannot make us hold more than one packet's worth;
- each byte is copied once on its way to a packet, however the stream is cut:
  a packet whole in its chunk is sliced out of it, and only the part of a
  packet that a chunk leaves unfinished is held, and completed from the next.
"""

from __future__ import annotations

import struct
from typing import Final

from ..errors import MalformedFrame, MessageTooLarge

__all__ = ["LENGTH_PREFIX_SIZE", "StreamDeframer", "frame_for_stream", "length_prefix"]

_LENGTH: Final = struct.Struct("!I")
_unpack_length_from: Final = _LENGTH.unpack_from
LENGTH_PREFIX_SIZE: Final = 4
_LARGEST: Final = 0xFFFFFFFF


def frame_for_stream(packet: bytes) -> bytes:
    """``packet`` with its length prefix, ready to write to a stream."""
    return length_prefix(packet) + packet


def length_prefix(packet: bytes) -> bytes:
    """The prefix ``packet`` travels after on a stream (for a writer that sends the two
    as separate buffers rather than joined)."""
    if len(packet) > _LARGEST:
        raise MessageTooLarge(len(packet), _LARGEST, "a stream packet's length is a u32")
    return len(packet).to_bytes(4, "big")


class StreamDeframer:
    """Reassembles length-prefixed packets from stream chunks of any size."""

    __slots__ = ("_buffer", "_failure", "_max_packet_size")

    def __init__(self, max_packet_size: int) -> None:
        self._max_packet_size = max_packet_size
        self._buffer = bytearray()
        """The start of a packet that the chunks so far left unfinished, its prefix first."""
        self._failure: MalformedFrame | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add ``chunk``; return every packet now complete, in order.

        Raise ``MalformedFrame`` for an empty or oversized declared length; the
        stream cannot be resynchronised after that and should be closed. Packets
        that were whole before the fault in the same chunk are returned first,
        and the fault is raised by the next call (:attr:`failed` is True meanwhile).
        """
        if self._failure is not None:
            raise self._failure
        packets: list[bytes] = []
        try:
            offset = self._complete_held(chunk, packets) if self._buffer else 0
            end = len(chunk)
            while end - offset >= LENGTH_PREFIX_SIZE:
                stop = offset + LENGTH_PREFIX_SIZE + self._declared(chunk, offset)
                if stop > end:
                    break
                packets.append(chunk[offset + LENGTH_PREFIX_SIZE:stop])
                offset = stop
        except MalformedFrame as failure:
            self._failure = failure
            self._buffer.clear()
            if not packets:
                raise
            return packets
        if offset < end:
            self._buffer += memoryview(chunk)[offset:]
        return packets

    def end(self) -> None:
        """The stream has ended: raise a fault found but not raised yet. A stream cut inside
        a packet is not malformed: that packet is lost with its connection, which its
        sender hears of."""
        if self._failure is not None:
            raise self._failure

    @property
    def failed(self) -> bool:
        """True once the stream was found malformed: every later call raises."""
        return self._failure is not None

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a packet."""
        return len(self._buffer)

    def discard(self) -> None:
        """Let go of the unfinished packet: its connection is gone, and nothing more is fed."""
        self._buffer = bytearray()

    def _complete_held(self, chunk: bytes, packets: list[bytes]) -> int:
        """Take from ``chunk`` what the held packet lacks (all of it, if not enough).

        Appends the packet once whole; returns how many bytes of ``chunk`` it took.
        """
        buffer = self._buffer
        taken = 0
        if len(buffer) < LENGTH_PREFIX_SIZE:
            taken = min(LENGTH_PREFIX_SIZE - len(buffer), len(chunk))
            buffer += chunk[:taken]
            if len(buffer) < LENGTH_PREFIX_SIZE:
                return taken
        missing = LENGTH_PREFIX_SIZE + self._declared(buffer, 0) - len(buffer)
        piece = min(missing, len(chunk) - taken)
        buffer += memoryview(chunk)[taken:taken + piece]
        if piece == missing:
            del buffer[:LENGTH_PREFIX_SIZE]  # cheap: a bytearray drops its head in place
            packets.append(bytes(buffer))
            buffer.clear()
        return taken + piece

    def _declared(self, data: bytes | bytearray, offset: int) -> int:
        """The length declared at ``offset``, if allowed; else raise ``MalformedFrame``."""
        (length,) = _unpack_length_from(data, offset)
        if length == 0 or length > self._max_packet_size:
            raise MalformedFrame(f"stream packet declares {length} bytes; allowed 1.."
                                 f"{self._max_packet_size}")
        return int(length)
