"""Serves a node's counters as Prometheus metrics over HTTP (the ``metrics`` extra).

Rules this module keeps:

- Every exporter has its own ``CollectorRegistry``; nothing is registered in
  prometheus_client's global one, so several nodes in one process never clash.
- The node's counters change on the event loop thread and are read only there:
  each scrape takes its snapshot on the loop, then formats it in a worker
  thread (``asyncio.to_thread``), because formatting a full peer table
  (1,026 peers x 21 counters) takes a noticeable fraction of a second the loop
  must not lose. One scrape formats at a time, however many clients ask.
- Label sets stay bounded: ``peer`` comes from ``NodeStats.peers`` (at most
  1024 peers plus ``"(other)"``), ``scheme`` from the transports in use.
- The HTTP server is the event loop's own: one GET per connection, bounded
  request size, a deadline per connection and a cap on open connections.
  ``close()`` stops listening and ends every open connection, so the port is
  free when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Final

from ..errors import ConfigError, TransportError
from .ratelog import RateLimitedLog
from .stats import COUNTER_NAMES, FAULT_COUNTERS, NodeStats

_import_error: ImportError | None = None
try:
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
except ImportError as exc:  # the optional extra is not installed
    _import_error = exc

__all__ = ["DEFAULT_METRICS_PORT", "METRICS_PATH", "MetricsExporter", "metrics_available"]

logger = logging.getLogger("relay_core.metrics")

DEFAULT_METRICS_PORT: Final = 9464
"""The port OpenTelemetry's Prometheus exporter uses too; 0 picks a free one."""

METRICS_PATH: Final = "/metrics"

_REQUEST_LIMIT = 8192
"""Longest request line or header line accepted, in bytes."""
_MAX_HEADERS = 64
_MAX_CONNECTIONS = 16
_CONNECTION_DEADLINE = 30.0
"""Seconds a client has to send its request and take the reply."""

_HELP = {
    "messages_sent": "Frames carrying a user payload (message, request or response) sent",
    "messages_received": "Frames carrying a user payload (message, request or response) received",
    "frames_sent": "Frames of every kind sent",
    "frames_received": "Frames of every kind received",
    "packets_sent": "Packets handed to the transport",
    "packets_received": "Packets the transport delivered",
    "bytes_sent": "Bytes of packets handed to the transport",
    "bytes_received": "Bytes of packets the transport delivered",
    "duplicates": "Packets dropped by the duplicate window as already seen",
    "heph_duplicates": "heph-json messages dropped because their uuid came before from the "
                       "same source (address; on tcp, connection)",
    "too_old": "Packets dropped by the duplicate window as older than it remembers",
    "corrupt": "Packets dropped because their checksum did not match (damaged in transit)",
    "unauthenticated": "Packets dropped because they were not sealed where required, "
                       "or did not verify",
    "not_allowed": "Packets dropped because their source is outside the listener's allow list",
    "malformed": "Packets dropped because they did not parse (and stream connections closed "
                 "for bytes that could not be cut into packets)",
    "undecodable": "Frames dropped because their payload did not decode",
    "unsupported_codec": "Frames dropped because they name a codec or compressor not installed",
    "unknown_actor": "Messages dropped because no actor and no router has the target name",
    "mailbox_full": "Inbound messages dropped because the target mailbox was full (in "
                    "messages or bytes) or the node held max_buffered_bytes of input",
    "oversize": "Frames dropped for exceeding the message size limit, either way",
    "decompression_limited": "Inbound compressed frames dropped undecompressed because the "
                             "node had decompressed max_decompression_rate bytes a second",
    "over_budget": "Inbound frames dropped undecompressed because their packet's frames "
                   "would decode from more than max_message_size bytes together",
    "send_errors": "Send failures (events, not messages): packets the transport refused, "
                   "connections lost or not made, frames for a peer that could not be reached",
    "link_full": "Outbound messages dropped because a stream link's queue was past its "
                 "hard limit",
    "closed_unsent": "Outbound messages still unsent when the node closed and its grace ended",
    "connection_lost": "Outbound messages queued for (or unacknowledged on) a connection "
                       "that was lost or never made",
    "peer_unreachable": "Outbound messages dropped from a queue because an attempt to connect "
                        "found the peer unreachable",
    "late_replies": "Replies for no waiting call (the caller stopped waiting, or no such call)",
    "reflected": "Packets carrying this node's own incarnation (its own, sent back at it): "
                 "dropped",
    "forged_cancels": "Cancels for a request being handled that came from elsewhere than "
                      "the request: ignored",
    "forged_replies": "Replies for a waiting call that came from elsewhere than where its "
                      "request went: dropped",
    "requests_evicted": "Requests being handled that were cancelled to make room for newer "
                        "ones (max_active_requests)",
    "replies_not_resent": "Retried requests whose cached reply was not sent again (another "
                          "source, or over three times the bytes of the retry)",
    "connections_refused": "Connections a listener turned away: past max_connections, or "
                           "not accepted for lack of file descriptors",
    "handshake_answers_limited": "Sealed handshake answers not sent because their source "
                                 "had drawn its share this second (8), or 1024 sources had",
    "handshakes_dropped": "Unfinished QUIC handshakes a listener dropped, oldest first, "
                          "to make room for a new one past max_handshakes",
    "connections_timed_out": "Accepted connections closed by handshake_timeout or idle_timeout",
    "connections_over_budget": "Connections closed because their unfinished packet would pass "
                               "the transport's max_buffered_input",
    "internal_errors": "Unexpected exceptions from a plugin or the node while handling a "
                       "received packet or encoding a reply (a bug; each is logged)",
}

_FAULT_HELP = {
    "dropped": "Packets the fault adapter lost on purpose",
    "duplicated": "Packets the fault adapter delivered twice",
    "reordered": "Packets the fault adapter held back behind a later one",
    "delayed": "Packets the fault adapter delayed",
    "corrupted": "Packets the fault adapter damaged (one bit flipped)",
    "overflow": "Packets the fault adapter dropped because it already held its limit",
    "in_flight": "Packets the fault adapter holds now",
    "peak_in_flight": "Most packets the fault adapter has held at once",
}

_scraped: contextvars.ContextVar[NodeStats | None] = contextvars.ContextVar(
    "net_relay_scraped_stats", default=None
)
"""The snapshot a scrape took on the loop thread, for the thread that formats it."""


def metrics_available() -> bool:
    """True if prometheus_client is installed, so a :class:`MetricsExporter` can be built."""
    return _import_error is None


# -- from counters to metric families -------------------------------------


class _NodeCollector:
    """A prometheus_client collector over one node's stats."""

    def __init__(self, stats: Callable[[], NodeStats], node_name: str) -> None:
        self._stats = stats
        self._node = node_name

    def collect(self) -> Iterator[Metric]:
        # Outside a scrape (someone collecting the registry directly) read the node now.
        snapshot = _scraped.get()
        if snapshot is None:
            snapshot = self._stats()
        yield from _counter_families(snapshot.peers, self._node)
        senders = GaugeMetricFamily(
            "net_relay_duplicate_window_senders",
            "Sender incarnations the duplicate window remembers now",
            labels=("node",),
        )
        senders.add_metric((self._node,), snapshot.senders)
        yield senders
        drops = CounterMetricFamily(
            "net_relay_receive_drops_total",
            "Packets the operating system dropped at a full receive buffer, before the node read them",
            labels=("node", "scheme"),
        )
        for scheme, count in snapshot.receive_drops.items():
            drops.add_metric((self._node, scheme), count)
        yield drops
        yield from _fault_families(snapshot.faults, self._node)


def _counter_families(peers: Mapping[str, Mapping[str, int]], node: str) -> Iterator[Metric]:
    for name in COUNTER_NAMES:
        family = CounterMetricFamily(f"net_relay_{name}_total", _HELP.get(name, name),
                                     labels=("node", "peer"))
        for peer, counters in peers.items():
            family.add_metric((node, peer), counters.get(name, 0))
        yield family


def _fault_families(faults: Mapping[str, Mapping[str, int]], node: str) -> Iterator[Metric]:
    """One family per figure any fault adapter reports; its counters end in ``_total``."""
    names = dict.fromkeys(name for figures in faults.values() for name in figures)
    for name in names:
        help_text = _FAULT_HELP.get(name, f"Fault adapter figure {name}")
        family: CounterMetricFamily | GaugeMetricFamily
        if name in FAULT_COUNTERS:
            family = CounterMetricFamily(f"net_relay_fault_{name}_total", help_text,
                                         labels=("node", "scheme"))
        else:
            family = GaugeMetricFamily(f"net_relay_fault_{name}", help_text,
                                       labels=("node", "scheme"))
        for scheme, figures in faults.items():
            if name in figures:
                family.add_metric((node, scheme), figures[name])
        yield family


# -- the HTTP endpoint ------------------------------------------------------


class _BadRequest(Exception):
    """The client did not send a request we can read."""


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"metrics port = {port!r}: must be an integer from 0 to 65535 "
                          "(0 picks a free port)")
    return port


class MetricsExporter:
    """Serves ``stats()`` at ``http://HOST:PORT/metrics`` in the Prometheus text format.

    ``stats`` is called on the event loop thread, once per scrape (``Node.stats``
    fits). ``registry`` is this exporter's own; a program may register more
    collectors in it to serve them at the same address.
    """

    def __init__(self, stats: Callable[[], NodeStats], node_name: str, *,
                 host: str = "127.0.0.1", port: int = DEFAULT_METRICS_PORT) -> None:
        if _import_error is not None:
            raise ConfigError("Prometheus metrics need prometheus-client, which is not "
                              f"installed ({_import_error}); install net-relay[metrics]")
        if not isinstance(host, str) or not host:
            raise ConfigError(f"metrics host = {host!r}: must be a host name or an IP address")
        self._stats = stats
        self._host = host
        self._port = _check_port(port)
        self.registry = CollectorRegistry()
        self.registry.register(_NodeCollector(stats, node_name))
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[object]] = set()
        self._one_scrape_at_a_time = asyncio.Lock()
        self._log = RateLimitedLog(logger)

    async def start(self) -> tuple[str, int]:
        """Start serving; return the (host, port) bound. Starting twice changes nothing."""
        if self._server is None:
            try:
                self._server = await asyncio.start_server(
                    self._serve, self._host, self._port, limit=_REQUEST_LIMIT)
            except OSError as exc:
                raise TransportError(f"cannot serve metrics on {self._host}:{self._port}: "
                                     f"{exc.strerror or exc}") from exc
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        """Stop listening and end every open connection; the port is free afterwards."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # asyncio runs every connection handler as a task
        if self._server is None or len(self._connections) >= _MAX_CONNECTIONS:
            writer.close()
            return
        self._connections.add(task)
        try:
            async with asyncio.timeout(_CONNECTION_DEADLINE):
                writer.write(await self._reply(reader))
                await writer.drain()
        except (OSError, TimeoutError):
            pass  # the client left or was too slow: there is no one to answer
        except asyncio.CancelledError:
            # close() ended us. Python 3.11's stream callback cannot take a
            # cancelled handler (it logs an error), so this one ends normally.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _reply(self, reader: asyncio.StreamReader) -> bytes:
        try:
            method, path, accept = await _read_request(reader)
        except _BadRequest as exc:
            return _response(400, "Bad Request", str(exc))
        if path.partition("?")[0] != METRICS_PATH:
            return _response(404, "Not Found", f"metrics are served at {METRICS_PATH}")
        if method != "GET":
            return _response(405, "Method Not Allowed", "only GET is allowed",
                             extra="Allow: GET\r\n")
        return await self._scrape(accept)

    async def _scrape(self, accept: str) -> bytes:
        encoder, content_type = choose_encoder(accept)
        try:
            async with self._one_scrape_at_a_time:
                _scraped.set(self._stats())  # in this task's own context, which to_thread copies
                body = await asyncio.to_thread(encoder, self.registry)
        except Exception as exc:  # noqa: BLE001 - a failure costs one scrape
            self._log.warning("metrics_failed", "metrics scrape failed: %r", exc)
            return _response(500, "Internal Server Error", "collecting the metrics failed")
        return _response(200, "OK", body, content_type)


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, str]:
    """(method, path, Accept header) of the request; the headers are read and dropped."""
    parts = (await _read_line(reader)).decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest("expected an HTTP/1.x request line such as 'GET /metrics HTTP/1.1'")
    accept = ""
    for _ in range(_MAX_HEADERS):
        line = await _read_line(reader)
        if line.strip() == b"":  # the blank line that ends the headers, or the client left
            return parts[0], parts[1], accept
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "accept":
            accept = value.strip()
    raise _BadRequest(f"more than {_MAX_HEADERS} header lines")


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError as exc:  # what StreamReader raises past its limit
        raise _BadRequest(f"a request line or header longer than {_REQUEST_LIMIT} bytes") from exc


def _response(status: int, reason: str, body: str | bytes,
              content_type: str = "text/plain; charset=utf-8", extra: str = "") -> bytes:
    data = body if isinstance(body, bytes) else f"{body}\n".encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n{extra}\r\n")
    return head.encode("latin-1") + data
