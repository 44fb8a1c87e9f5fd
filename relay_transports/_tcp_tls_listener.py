"""A ``tcp`` listener that accepts connections itself, with or without TLS.

``create_server(ssl=...)`` would hide handshake failures, and ``start_tls``
after an ordinary accept cannot hold back the client's first bytes on every
loop (uvloop starts reading an accepted connection after ``connection_made``
returns, whatever it did). And a server out of file descriptors is treated
differently by each loop: uvloop closes it for good. So this listener takes
connections off its socket and hands each to ``accepted``, which may refuse
it (``max_connections``) or open it, TLS first where configured, before any
protocol sees a byte. When accept fails for lack of descriptors or memory it
tells ``out_of_resources``, rests a second (the kernel's backlog holds the
clients) and accepts again; open connections go on being served.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable

from relay_core import RateLimitedLog

from ._addresses import display
from ._tcp_net import _reason

_ACCEPTS_PER_WAKEUP = 100
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_RETRY_DELAY = 1.0  # seconds accepting rests after running out of descriptors or memory
_BACKLOG = 1024


def bind(host: str, port: int) -> socket.socket:
    """A non-blocking listening socket on the numeric ``host`` and ``port`` (0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=_BACKLOG)
    sock.setblocking(False)
    return sock


class Listener:
    """Accepts connections on ``sock`` and hands each, non-blocking, to ``accepted``."""

    def __init__(
        self,
        sock: socket.socket,
        accepted: Callable[[socket.socket, tuple[str, int]], None],
        out_of_resources: Callable[[tuple[str, int]], None],
        log: RateLimitedLog,
    ) -> None:
        self.sock = sock
        self._accepted = accepted
        self._out_of_resources = out_of_resources
        self._log = log
        self._loop = asyncio.get_running_loop()
        self._retry: asyncio.TimerHandle | None = None
        self._closed = asyncio.Event()
        self._loop.add_reader(sock.fileno(), self._accept)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening socket, as ``asyncio.Server.sockets`` gives them."""
        return (self.sock,)

    def close(self) -> None:
        if self._closed.is_set():
            return
        if self._retry is not None:
            self._retry.cancel()
        else:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                connection, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    self._rest(exc)
                    return
                continue  # that client gave up (ECONNABORTED and the like); take the next
            connection.setblocking(False)
            self._accepted(connection, (str(peer[0]), int(peer[1])))

    def _rest(self, error: OSError) -> None:
        """Stop accepting for a moment: the backlog holds clients until descriptors free up."""
        host, port = self.sock.getsockname()[:2]
        self._out_of_resources((str(host), int(port)))
        self._log.warning(
            "accept_failed",
            "tcp listener on %s cannot accept connections: %s; trying again in %.0f s",
            display(str(host), port),
            _reason(error),
            _RETRY_DELAY,
        )
        self._loop.remove_reader(self.sock.fileno())
        self._retry = self._loop.call_later(_RETRY_DELAY, self._resume)

    def _resume(self) -> None:
        self._retry = None
        self._loop.add_reader(self.sock.fileno(), self._accept)
