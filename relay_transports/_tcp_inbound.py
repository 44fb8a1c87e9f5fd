"""The connections a ``tcp`` transport accepts: its listeners, and how many clients they hold.

Rules this module keeps:

- Bounded clients: a listener accepts connections itself (``_tcp_tls_listener``)
  and the transport holds at most ``max_connections`` of them, TLS handshakes
  included. At the cap a newcomer takes the place of the oldest connection that
  has sent no whole packet yet; with none, the newcomer is closed at once.
- Each accepted connection must finish its TLS handshake, then its first packet,
  within ``handshake_timeout``, and speak within ``idle_timeout``. What exceeds
  is closed and reported to ``events.connection_dropped`` with the counter it
  goes to, and logged at WARNING, rate-limited, in words that name the limit.
- A TLS handshake runs before the connection's stream exists, so the stream
  sees no byte before it: ``create_server(ssl=...)`` would drop handshake
  failures without a word, and ``start_tls`` after an ordinary accept cannot
  hold back the client's first bytes on uvloop. A failed handshake is logged
  at WARNING, rate-limited.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

from relay_core import ConnectionDropReason, HostPort, RateLimitedLog

from ._addresses import display
from ._tcp_net import _error, _reason
from ._tcp_stream import StreamHost, _Stream
from ._tcp_tls_listener import Listener, bind

_DROP_WORDS: Mapping[ConnectionDropReason, str] = {
    "connections_refused": "refused: max_connections = {settings.max_connections} are open",
    "connections_timed_out": "closed: no TLS handshake or no whole packet within "
                             "handshake_timeout = {settings.handshake_timeout:g} s, or idle "
                             "past idle_timeout",
    "connections_over_budget": "closed: its unfinished packet would take the unfinished packets "
                               "of all connections past max_buffered_input = "
                               "{settings.max_buffered_input} bytes",
}


class InboundHost(StreamHost, Protocol):
    """What the accepting side needs of the transport: its streams' host, and its tasks."""

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None: ...


class Inbound:
    """A transport's listeners and the connections they accepted, handshaking ones included."""

    def __init__(
        self, host: InboundHost, server_tls: ssl.SSLContext | None, log: RateLimitedLog
    ) -> None:
        self._host = host
        self._server_tls = server_tls
        self._log = log
        self.listeners: list[Listener] = []
        self.count = 0
        """Accepted connections open, handshaking ones included: at most max_connections."""
        self._unproven: dict[_Stream, None] = {}
        """Accepted connections that may not have sent a whole packet yet, oldest first
        (those that did leave it when a newcomer looks for room)."""
        self.unclaimed: set[socket.socket] = set()
        """Accepted connections whose handshake task has not started yet."""

    def listen(self, numeric_host: str, port: int, where: str) -> HostPort:
        """Accept connections on the numeric host and port; return what was bound."""
        try:
            listener = Listener(bind(numeric_host, port), self._accepted,
                                self._out_of_resources, self._log)
        except OSError as exc:
            raise _error(exc.errno, f"cannot listen on tcp {where}: {_reason(exc)}") from None
        self.listeners.append(listener)
        sockname = listener.sockets[0].getsockname()
        return (str(sockname[0]), int(sockname[1]))

    def opened(self, stream: _Stream) -> None:
        """An accepted connection's stream is open: it has its first packet still to send."""
        self._unproven[stream] = None

    def closed(self, stream: _Stream) -> None:
        """An open stream closed: an accepted one gives its place up."""
        if stream.accepted:
            self.count -= 1
        self._unproven.pop(stream, None)

    def dropped(self, source: HostPort, reason: ConnectionDropReason) -> None:
        """A connection is refused or closed for a limit (``reason`` names its counter)."""
        self._log.warning(
            reason,
            "tcp connection with %s %s",
            display(*source),
            _DROP_WORDS[reason].format(settings=self._host.settings),
        )
        self._host.events.connection_dropped(source, reason)

    def stop_listening(self) -> None:
        for listener in self.listeners:
            listener.close()

    async def wait_closed(self) -> None:
        """Once handshake tasks are done: close the connections none of them took up, and
        wait for the listeners to close."""
        for connection in self.unclaimed:  # its handshake task was cancelled unstarted
            connection.close()
        self.unclaimed.clear()
        for listener in self.listeners:
            await listener.wait_closed()

    def _accepted(self, connection: socket.socket, peer: HostPort) -> None:
        if self._host.closed:
            connection.close()
            return
        if self.count >= self._host.settings.max_connections and not self._make_room():
            connection.close()
            self.dropped(peer, "connections_refused")
            return
        self.count += 1
        self.unclaimed.add(connection)
        self._host.spawn(self._open(connection, peer))

    def _make_room(self) -> bool:
        """Close the oldest accepted connection that has sent no whole packet yet, if any.

        Honest clients send their first packet at once; connections that only hold a
        place (a flood of idle or trickling ones) are the ones to give it up, so a
        newcomer is not refused while they wait for ``handshake_timeout``.
        """
        unproven = self._unproven
        while unproven:
            stream = next(iter(unproven))
            del unproven[stream]
            if not stream.dead and not stream.io.delivered:
                self.dropped(stream.source, "connections_refused")
                stream.abort()
                return True
        return False

    def _out_of_resources(self, listener: HostPort) -> None:
        self._host.events.connection_dropped(listener, "connections_refused")

    async def _open(self, connection: socket.socket, peer: HostPort) -> None:
        """Open an accepted connection, running the server side of TLS first where configured;
        its stream opens when that is done (and from then on counts itself)."""
        self.unclaimed.discard(connection)
        host = self._host
        framing = host.settings.framing
        timeout = host.settings.handshake_timeout
        tls: dict[str, Any] = {}
        if self._server_tls is not None:
            # Our own timeout fires first, so that a slow handshake is told from a failed one.
            tls = {"ssl": self._server_tls, "ssl_handshake_timeout": 2 * timeout}
        try:
            async with asyncio.timeout(timeout):
                await asyncio.get_running_loop().connect_accepted_socket(
                    lambda: _Stream(host, None, peer, framing), connection, **tls)
        except TimeoutError:
            self.count -= 1
            connection.close()
            self.dropped(peer, "connections_timed_out")
        except OSError as exc:  # ssl.SSLError, a reset
            self.count -= 1
            connection.close()
            self._log.warning(
                "tls_handshake",
                "tls handshake with tcp client %s failed: %s",
                display(*peer),
                _reason(exc),
            )
