"""Packets on a byte stream: each one preceded by its length (u32, big-endian).

Stream transports (TCP, QUIC streams) carry the same packets as datagrams do;
this splits a stream back into them. Sans-IO: bytes in, packets out.

Invariant: a declared length above ``max_packet_size`` is rejected before any
of it is buffered, so a peer cannot make us hold more than one packet's worth.
"""

from __future__ import annotations

import struct

from ._errors import MalformedFrame, MessageTooLarge

__all__ = ["LENGTH_PREFIX_SIZE", "StreamDeframer", "frame_for_stream"]

_LENGTH = struct.Struct("!I")
LENGTH_PREFIX_SIZE = _LENGTH.size


def frame_for_stream(packet: bytes) -> bytes:
    """``packet`` with its length prefix, ready to write to a stream."""
    if len(packet) > 0xFFFFFFFF:
        raise MessageTooLarge(len(packet), 0xFFFFFFFF, "a stream packet's length is a u32")
    return _LENGTH.pack(len(packet)) + packet


class StreamDeframer:
    """Reassembles length-prefixed packets from stream chunks of any size."""

    __slots__ = ("_buffer", "_max_packet_size")

    def __init__(self, max_packet_size: int) -> None:
        self._max_packet_size = max_packet_size
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add ``chunk``; return every packet now complete, in order.

        Raises ``MalformedFrame`` for an empty or oversized declared length;
        the stream cannot be resynchronised after that and should be closed.
        """
        buffer = self._buffer
        buffer += chunk
        packets = []
        offset = 0
        while len(buffer) - offset >= LENGTH_PREFIX_SIZE:
            (length,) = _LENGTH.unpack_from(buffer, offset)
            if length == 0 or length > self._max_packet_size:
                raise MalformedFrame(f"stream packet declares {length} bytes; allowed 1.."
                                     f"{self._max_packet_size}")
            end = offset + LENGTH_PREFIX_SIZE + length
            if len(buffer) < end:
                break
            packets.append(bytes(buffer[offset + LENGTH_PREFIX_SIZE:end]))
            offset = end
        del buffer[:offset]
        return packets

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a packet."""
        return len(self._buffer)
