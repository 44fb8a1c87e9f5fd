"""Heph's JSON over a byte stream: objects back to back, cut out whatever the chunking.

Heph's TCP relay writes its envelopes one after another with no length prefix
(whitespace between them allowed). :class:`HephObjectSplitter` finds where each
object ends, scanning each byte at most twice however the stream is chunked (it
never re-reads its buffer from the start), and refuses an object over its
limit before buffering more of it; :class:`HephStreamSplitter` also decodes
each object as :func:`~relay_core.protocol.heph.decode_datagram` does a
datagram, so the same bounds hold. :class:`~relay_core.HephJsonFraming` (in
:mod:`relay_core.protocol.stream_framings`) is that format as a
:class:`~relay_core.StreamFraming`, which the node hands the tcp transport.
"""

from __future__ import annotations

import re
from typing import Final

from ..errors import ConfigError, MalformedFrame
from .heph import HephEnvelope, decode_datagram, is_heph_json, is_json_value

__all__ = [
    "HephObjectSplitter",
    "HephStreamSplitter",
    "as_written",
    "check_object_size",
    "unless_a_value",
    "unless_an_object",
]

_SMALLEST_OBJECT: Final = 2

_OPEN: Final = ord("{")
_NOT_WHITESPACE: Final = re.compile(rb"[^ \t\n\r]")
# Inside an object only braces and strings matter for finding its end. One match
# skips everything up to the next brace outside a string (group 1), or up to
# where a string goes on in bytes not received yet; possessive, so no backtracking.
_OBJECT_REST: Final = re.compile(rb'(?:[^{}"]++|"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+")*+([{}])?')
# The rest of a string cut by the end of a chunk; group 1 is its closing quote.
_STRING_REST: Final = re.compile(rb'[^"\\]*+(?:\\[\s\S][^"\\]*+)*+(")?')


def _match(pattern: re.Pattern[bytes], buffer: bytearray, position: int) -> re.Match[bytes]:
    found = pattern.match(buffer, position)
    assert found is not None  # both patterns match the empty string
    return found


def check_object_size(max_object_size: int) -> None:
    if max_object_size < _SMALLEST_OBJECT:
        raise ConfigError(f"max_object_size is {max_object_size}; an object takes at least 2")


def unless_an_object(packet: bytes) -> str | None:
    """Why ``packet`` is not a JSON object to send as it is, or None."""
    if is_heph_json(packet):
        return None
    return ("it speaks heph-json, so a packet must be one JSON object, starting with"
            f" b'{{'; this one starts {packet[:8]!r}")


def unless_a_value(packet: bytes) -> str | None:
    """Why ``packet`` is not a bare JSON value to answer a Heph node with, or None."""
    if is_json_value(packet):
        return None
    return ("it speaks heph-json to the Heph node that connected, so a packet must be one"
            f" JSON value (a bare message); this one starts {packet[:8]!r}")


def as_written(packet: bytes) -> bytes:
    """``packet`` itself: a JSON value needs no prefix on a stream (an object's closing
    brace ends it; a bare value sent back ends with its newline)."""
    return packet


class HephObjectSplitter:
    """Splits a heph-json byte stream (Heph over TCP) into the bytes of its objects.

    Between objects only whitespace may appear. Inside an object the splitter
    follows strings and escapes and counts braces, only to find where the object
    ends; it does not check the object (:func:`decode_datagram` does), so what it
    returns starts with ``{`` and ends with the matching ``}``. No byte is scanned
    more than twice (once more when a string runs past the end of a chunk), and
    after each call no more than one unfinished object of at most
    ``max_object_size`` bytes is held; a longer object is refused.

    After any :class:`MalformedFrame` the stream cannot be resynchronised, and
    every later call raises it again: close the connection.
    """

    __slots__ = ("_buffer", "_depth", "_failure", "_in_string", "_max_object_size",
                 "_offset", "_position", "_start")

    def __init__(self, max_object_size: int) -> None:
        check_object_size(max_object_size)
        self._max_object_size = max_object_size
        self._buffer = bytearray()
        self._position = 0  # the next byte of _buffer to look at
        self._start = 0  # where the object being read starts in _buffer
        self._depth = 0  # braces open in that object; 0 between objects
        self._in_string = False
        self._offset = 0  # the stream offset of _buffer[0], for error messages
        self._failure: str | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add ``chunk``; return the bytes of every object now complete, in order.

        Raise :class:`MalformedFrame` for anything but whitespace between
        objects, or an object over the limit. Objects that were whole before the
        fault in the same chunk are returned first, and the fault is raised by
        the next call to :meth:`feed` or :meth:`end` (:attr:`failed` is True
        meanwhile).
        """
        return [data for _, data in self._split(chunk)]

    def end(self) -> None:
        """The stream has ended: raise :class:`MalformedFrame` if it ended inside an object
        or after a fault not raised yet."""
        self._raise_failure()
        if self._depth:
            raise MalformedFrame(
                f"heph-json stream ended inside the object at byte {self._offset + self._start}"
            )

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of an object."""
        return len(self._buffer)

    @property
    def failed(self) -> bool:
        """True once the stream was found malformed: every later call raises."""
        return self._failure is not None

    def discard(self) -> None:
        """Let go of the unfinished object: its connection is gone, and nothing more is fed."""
        self._buffer = bytearray()
        self._position = self._start = self._depth = 0
        self._in_string = False

    def _split(self, chunk: bytes) -> list[tuple[int, bytes]]:
        """:meth:`feed`, with the stream offset where each object starts."""
        self._raise_failure()
        self._buffer += chunk
        objects: list[tuple[int, bytes]] = []
        try:
            self._scan(objects)
        except MalformedFrame as error:
            self._fail(str(error))
            if not objects:
                raise
            return objects
        self._compact()
        return objects

    def _fail(self, reason: str) -> None:
        """Refuse the rest of the stream, for ``reason``, and let go of its bytes."""
        self._failure = reason
        self._buffer.clear()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise MalformedFrame(self._failure)

    def _scan(self, objects: list[tuple[int, bytes]]) -> None:
        buffer = self._buffer
        while self._position < len(buffer):
            if self._depth:
                if not self._read_token(buffer, objects):
                    break
            elif not self._start_object(buffer):
                break
        if self._depth and len(buffer) - self._start > self._max_object_size:
            raise MalformedFrame(self._over_limit("is already", len(buffer) - self._start))

    def _start_object(self, buffer: bytearray) -> bool:
        """Skip whitespace to the next object; False when the buffer ends first."""
        found = _NOT_WHITESPACE.search(buffer, self._position)
        if found is None:
            self._position = len(buffer)
            return False
        start = found.start()
        if buffer[start] != _OPEN:
            raise MalformedFrame(
                f"heph-json stream has {bytes(buffer[start:start + 1])!r} at byte"
                f" {self._offset + start}; between objects only whitespace may appear"
            )
        self._start, self._position, self._depth = start, start + 1, 1
        return True

    def _read_token(self, buffer: bytearray, objects: list[tuple[int, bytes]]) -> bool:
        """Read up to the next brace of the current object; False when the buffer ends first."""
        if self._in_string:
            found = _match(_STRING_REST, buffer, self._position)
            self._position = found.end()
            self._in_string = found.group(1) is None
            return not self._in_string
        found = _match(_OBJECT_REST, buffer, self._position)
        self._position = found.end()
        brace = found.group(1)
        if brace is None:  # at the end of the buffer, or at a string that goes on past it
            self._in_string = self._position < len(buffer)
            self._position += self._in_string
            return self._in_string
        self._depth += 1 if brace == b"{" else -1
        if not self._depth:
            size = self._position - self._start
            if size > self._max_object_size:
                raise MalformedFrame(self._over_limit("is", size))
            objects.append((self._offset + self._start, bytes(buffer[self._start:self._position])))
        return True

    def _over_limit(self, verb: str, size: int) -> str:
        return (f"heph-json stream object at byte {self._offset + self._start} {verb}"
                f" {size} bytes, over the limit of {self._max_object_size}")

    def _compact(self) -> None:
        """Forget the bytes before the current object, or all bytes read between objects."""
        drop = self._start if self._depth else self._position
        del self._buffer[:drop]
        self._offset += drop
        self._position -= drop
        self._start = 0


class HephStreamSplitter:
    """Splits a heph-json byte stream (Heph over TCP) into messages, whatever the chunking.

    A :class:`HephObjectSplitter` finds the objects and :func:`decode_datagram`
    checks each, so the same bounds hold. After any :class:`MalformedFrame`,
    structural or in one object, every later call raises it again: close the
    connection.
    """

    __slots__ = ("_max_object_size", "_objects")

    def __init__(self, max_object_size: int) -> None:
        self._objects = HephObjectSplitter(max_object_size)
        self._max_object_size = max_object_size

    def feed(self, chunk: bytes) -> list[HephEnvelope]:
        """Add ``chunk``; return every message now complete, in order.

        Raise :class:`MalformedFrame` for bytes that are not heph-json or an
        object over the limit. Messages that were whole before the fault in the
        same chunk are returned first, and the fault is raised by the next call
        to :meth:`feed` or :meth:`end`.
        """
        messages: list[HephEnvelope] = []
        for offset, data in self._objects._split(chunk):
            try:
                messages.append(decode_datagram(data, self._max_object_size))
            except MalformedFrame as error:
                reason = f"heph-json stream object at byte {offset}: {error}"
                self._objects._fail(reason)
                if not messages:
                    raise MalformedFrame(reason) from None
                break
        return messages

    def end(self) -> None:
        """The stream has ended: raise :class:`MalformedFrame` if it ended inside an object
        or after a fault not raised yet."""
        self._objects.end()

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of an object."""
        return self._objects.buffered
