"""The stream framings a node hands its stream transports: ``relay_core.LengthPrefixFraming``
and ``relay_core.HephJsonFraming``, each a :class:`~relay_core.StreamFraming`.

Public classes, interpreted in every build so that ``help()`` shows them as written.
The work per packet is compiled: each instance answers ``frame`` with the compiled
function that does it (one of the speed idioms of ``relay_core/_compiled.py``), and
its splitters and refusals are compiled classes and functions of
:mod:`~relay_core.protocol.framing` and :mod:`~relay_core.protocol.heph_stream`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..interfaces import PacketSplitter
from .framing import LENGTH_PREFIX_SIZE, StreamDeframer, frame_for_stream
from .heph_stream import (
    HephObjectSplitter,
    as_written,
    check_object_size,
    unless_a_value,
    unless_an_object,
)

__all__ = ["HephJsonFraming", "LengthPrefixFraming"]


class LengthPrefixFraming:
    """net-relay's stream framing (a :class:`~relay_core.StreamFraming`): each packet
    after its length, a big-endian u32 (docs/protocol.md). Stateless: one serves any
    number of connections.

    It carries any packet of 1 byte or more (``refusal`` is None); :meth:`frame`
    refuses one past a u32.
    """

    def __init__(self) -> None:
        self.name = "net-relay"
        self.overhead = LENGTH_PREFIX_SIZE
        self.refusal: Callable[[bytes], str | None] | None = None
        self.frame = frame_for_stream  # type: ignore[method-assign]

    def frame(self, packet: bytes) -> bytes:
        """``packet`` after its length prefix; ``MessageTooLarge`` past a u32."""
        return frame_for_stream(packet)

    def splitter(self, max_packet_size: int) -> PacketSplitter:
        """A splitter refusing a declared length over ``max_packet_size``."""
        return StreamDeframer(max_packet_size)


class HephJsonFraming:
    """Heph's stream framing (a :class:`~relay_core.StreamFraming`): JSON objects back to
    back, each packet one object written as it is (docs/heph.md).

    ``max_object_size`` bounds the objects a connection reads below the transport's
    ``max_packet_size`` (a node sets its ``max_message_size``); None leaves that bound.
    With ``answers_bare``, what is written may be any JSON value (each ended by a
    newline, so a number does not run into the next): a listener answers a Heph node
    so, on the connection it opened, as Heph's tcp relay reads bare messages there.
    """

    def __init__(self, max_object_size: int | None = None, *, answers_bare: bool = False) -> None:
        if max_object_size is not None:
            check_object_size(max_object_size)
        self._max_object_size = max_object_size
        self.name = "heph-json"
        self.overhead = 0
        self.refusal: Callable[[bytes], str | None] | None = (
            unless_a_value if answers_bare else unless_an_object)
        self.frame = as_written  # type: ignore[method-assign]

    @property
    def max_object_size(self) -> int | None:
        """The framing's own bound on an object, if any."""
        return self._max_object_size

    def frame(self, packet: bytes) -> bytes:
        """``packet`` itself: an object needs no prefix, its closing brace ends it."""
        return as_written(packet)

    def splitter(self, max_packet_size: int) -> PacketSplitter:
        """A splitter for objects up to the lower of the two bounds."""
        limit = self._max_object_size
        return HephObjectSplitter(max_packet_size if limit is None
                                  else min(limit, max_packet_size))
