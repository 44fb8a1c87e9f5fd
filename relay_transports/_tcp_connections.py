"""The open connections of a ``tcp`` transport: what ``flush`` waits for and ``close`` ends.

Closing delivers: each connection is closed after its write buffer drains, for
at most ``_CLOSE_GRACE`` seconds all together; then the ones left are aborted,
and the bytes each still held are reported as one failure (they are bytes now,
no longer packets whose messages could be counted).
"""

from __future__ import annotations

import asyncio
import errno

from relay_core import TransportError, TransportEvents

from ._addresses import display
from ._tcp_stream import _Stream

_CLOSE_GRACE = 1.0  # seconds close() gives connections to flush their write buffers
_DRAIN_POLL = 0.01  # seconds between looks at the write buffers while flushing


class Connections:
    """Every stream between its ``connection_made`` and its ``connection_lost``."""

    def __init__(self, events: TransportEvents) -> None:
        self._events = events
        self._open: set[_Stream] = set()
        self._closing = False
        self._drained = asyncio.Event()
        """Set once closing and the last connection has gone."""

    def add(self, stream: _Stream) -> None:
        self._open.add(stream)

    def remove(self, stream: _Stream) -> bool:
        """Forget a stream that closed; whether it was open."""
        was_open = stream in self._open
        self._open.discard(stream)
        if self._closing and not self._open:
            self._drained.set()
        return was_open

    async def drain(self) -> None:
        """Return once no live connection holds bytes in its write buffer."""
        # The socket transports tell no one when a buffer drains below its mark.
        while any(stream.handle is not None and stream.handle.get_write_buffer_size()
                  for stream in self._open if not stream.dead):
            await asyncio.sleep(_DRAIN_POLL)

    async def close(self) -> None:
        """Close every connection, flushing for up to ``_CLOSE_GRACE`` seconds, then abort."""
        self._closing = True
        if not self._open:
            return
        for stream in list(self._open):
            stream.close()
        try:
            async with asyncio.timeout(_CLOSE_GRACE):
                await self._drained.wait()
        except TimeoutError:
            for stream in list(self._open):
                self._report_unwritten(stream)
                stream.abort()
            await asyncio.sleep(0)  # aborted transports report connection_lost on the next turn

    def _report_unwritten(self, stream: _Stream) -> None:
        """A connection aborted with bytes still in its write buffer: its peer stopped
        reading, and they are lost with it."""
        unwritten = stream.handle.get_write_buffer_size() if stream.handle is not None else 0
        if unwritten:
            text = (f"tcp connection to {display(*stream.source)} aborted at close with "
                    f"{unwritten} bytes unwritten: its peer stopped reading")
            self._events.send_failed(stream.source, TransportError(errno.ESHUTDOWN, text))
