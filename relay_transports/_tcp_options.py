"""The ``tcp`` transport's options: ``[listen.tcp]`` and each peer's, checked once, with clear errors.

Every bad value raises :class:`~relay_core.ConfigError` naming the option and
what it allows. ``framing`` is how packets travel on a stream, a
:class:`~relay_core.StreamFraming` that the node hands over: the transport's
applies to accepted connections, a peer's to its own connection.
TLS contexts are built here too, from checked PEM paths: one for listening, and
one per distinct set of client files (peers share them).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from relay_core import ConfigError, LengthPrefixFraming, PluginOption, StreamFraming

from ._tls import (
    check_pem_path,
    client_context,
    client_file_options,
    peer_file_options,
    server_context,
    server_file_options,
)

_KIB = 1024
_MIB = 1024 * _KIB
_MAX_PACKET = 0xFFFFFFFF  # the length prefix is a u32
_BATCH_SIZE = 256 * _KIB  # the default, unless max_packet_size is smaller
_MAX_SECONDS = 86400.0
_LENGTH_PREFIX = LengthPrefixFraming()  # the framing of a connection no one chose one for
_PEER_OPTIONS = ("tls", "ca", "client_certificate", "client_key", "server_name", "framing")
_PEM_OPTIONS = ("ca", "client_certificate", "client_key")


@dataclass(frozen=True, slots=True)
class _Settings:
    """The checked ``[listen.tcp]`` options that every connection follows."""

    max_packet_size: int
    batch_size: int
    queue_limit: int
    connect_timeout: float
    backoff_initial: float
    backoff_max: float
    keepalive: float
    """Idle seconds before the first keepalive probe; 0 turns keepalive off."""
    idle_timeout: float | None
    framing: StreamFraming
    """How packets travel on the connections the transport accepts."""
    max_connections: int
    """Accepted connections open at once (TLS handshakes included); more are refused."""
    handshake_timeout: float
    """Seconds an accepted connection has for its TLS handshake, then for its first whole packet."""
    max_buffered_input: int
    """Bytes of unfinished packets all connections may hold together."""
    max_object_size: int
    """The largest packet a connection reads (at most max_packet_size; a framing may bound
    its packets lower still)."""

    @property
    def high_water(self) -> int:
        """Buffered bytes above which a connection takes no more writes until it drains."""
        return 4 * self.batch_size


def _integer(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"[listen.tcp] {name} = {value!r} is not allowed: an integer from {low} to {high}"
        )
    return value


def _seconds(name: str, value: object, *, zero: str = "") -> float:
    """A duration in seconds; ``zero`` says what 0 means, if 0 is allowed."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else -1
    if not (0 < number <= _MAX_SECONDS or (zero and number == 0)):
        allowed = f"a number of seconds above 0, at most {_MAX_SECONDS:g}"
        if zero:
            allowed = f"a number of seconds from 0 ({zero}) to {_MAX_SECONDS:g}"
        raise ConfigError(f"[listen.tcp] {name} = {value!r} is not allowed: {allowed}")
    return float(number)


def _framing(where: str, value: object) -> StreamFraming:
    if value is None:
        return _LENGTH_PREFIX
    if not isinstance(value, StreamFraming) or isinstance(value, type):
        raise ConfigError(
            f"[{where}] framing = {value!r} is not allowed: a StreamFraming, which the node"
            " sets (relay_core.LengthPrefixFraming when none is given)"
        )
    return value


def peer_framing(options: Mapping[str, object]) -> StreamFraming:
    """The framing of a peer's connection, from its checked options."""
    return _framing("peer", options.get("framing"))


def _both_or_neither(where: str, options: Mapping[str, object], first: str, second: str) -> None:
    if (options.get(first) is None) != (options.get(second) is None):
        raise ConfigError(f"[{where}] {first} and {second} go together: set both or neither")


def _check_peer_options(options: Mapping[str, object], where: str) -> None:
    """Accept ``tls`` (bool), ``ca``, ``client_certificate``, ``client_key`` (PEM paths)
    ``server_name`` and ``framing``; anything else, or TLS options without ``tls = true``,
    is an error."""
    unknown = sorted(set(options) - set(_PEER_OPTIONS))
    if unknown:
        hint = ""
        if any("verify" in key or "insecure" in key for key in unknown):
            hint = (
                "; certificate checks cannot be turned off: to trust a self-signed "
                "server, set ca to its certificate"
            )
        raise ConfigError(
            f"[{where}]: unknown key(s) {', '.join(unknown)}; tcp peers take "
            f"address, codec, compressor, {', '.join(_PEER_OPTIONS)}{hint}"
        )
    if "framing" in options:
        _framing(where, options["framing"])
    tls = options.get("tls", False)
    if not isinstance(tls, bool):
        raise ConfigError(f"[{where}] tls = {tls!r} is not allowed: true or false")
    others = sorted(set(options) - {"tls", "framing"})
    if not tls and others:
        raise ConfigError(f"[{where}] {', '.join(others)} only apply to TLS: add tls = true")
    for name in _PEM_OPTIONS:
        if name in options:
            check_pem_path(where, name, options[name])
    _both_or_neither(where, options, "client_certificate", "client_key")
    server_name = options.get("server_name")
    if server_name is not None and (not isinstance(server_name, str) or not server_name):
        raise ConfigError(
            f"[{where}] server_name = {server_name!r} is not allowed: "
            "a host name or IP address (string)"
        )


def _settings(
    max_packet_size: object,
    batch_size: object,
    queue_limit: object,
    connect_timeout: object,
    backoff_initial: object,
    backoff_max: object,
    keepalive: object,
    idle_timeout: object,
    framing: object,
    limits: _Limits,
) -> _Settings:
    size = _integer("max_packet_size", max_packet_size, 1 * _KIB, _MAX_PACKET)
    budget = size if limits.max_buffered_input is None else limits.max_buffered_input
    initial = _seconds("backoff_initial", backoff_initial)
    most = _seconds("backoff_max", backoff_max)
    if most < initial:
        raise ConfigError(
            f"[listen.tcp] backoff_max = {backoff_max!r} is not allowed: "
            f"at least backoff_initial ({backoff_initial!r})"
        )
    return _Settings(
        max_packet_size=size,
        batch_size=_integer(
            "batch_size", min(_BATCH_SIZE, size) if batch_size is None else batch_size, 64, size
        ),
        queue_limit=_integer("queue_limit", queue_limit, 0, 1 << 40),
        connect_timeout=_seconds("connect_timeout", connect_timeout),
        backoff_initial=initial,
        backoff_max=most,
        keepalive=_seconds("keepalive", keepalive, zero="off"),
        idle_timeout=None if idle_timeout is None else (
            _seconds("idle_timeout", idle_timeout, zero="never") or None),
        framing=_framing("listen.tcp", framing),
        max_connections=_integer("max_connections", limits.max_connections, 1, 1 << 20),
        handshake_timeout=_seconds("handshake_timeout", limits.handshake_timeout),
        # One packet of the largest size must fit, or it could never arrive.
        max_buffered_input=_integer("max_buffered_input", budget, size, 1 << 40),
        max_object_size=size if limits.max_object_size is None else min(size, _integer(
            "max_object_size", limits.max_object_size, 2, _MAX_PACKET)),
    )


@dataclass(frozen=True, slots=True)
class _Limits:
    """What one client may hold of a listener: the options that bound accepted connections."""

    max_connections: object
    handshake_timeout: object
    max_buffered_input: object
    """None: ``max_packet_size``, one packet of the largest size."""
    max_object_size: object
    """None: ``max_packet_size``."""


def _server_tls(
    certificate: object, private_key: object, client_ca: object
) -> ssl.SSLContext | None:
    where = "listen.tcp"
    options = {"certificate": certificate, "private_key": private_key}
    _both_or_neither(where, options, "certificate", "private_key")
    if certificate is None:
        if client_ca is not None:
            raise ConfigError(
                f"[{where}] client_ca needs certificate and private_key: "
                "client certificates are only checked over TLS"
            )
        return None
    return server_context(
        where,
        check_pem_path(where, "certificate", certificate),
        check_pem_path(where, "private_key", private_key),
        None if client_ca is None else check_pem_path(where, "client_ca", client_ca),
    )


def _client_defaults(ca: object, certificate: object, key: object) -> dict[str, str | None]:
    where = "listen.tcp"
    options = {"ca": ca, "client_certificate": certificate, "client_key": key}
    _both_or_neither(where, options, "client_certificate", "client_key")
    return {
        name: None if value is None else check_pem_path(where, name, value)
        for name, value in options.items()
    }


def _path_or_none(value: object) -> str | None:
    return None if value is None else str(value)


class _ClientTls:
    """TLS for outbound connections: each peer's options over the transport's defaults."""

    def __init__(self, ca: object, certificate: object, key: object) -> None:
        self._defaults = _client_defaults(ca, certificate, key)
        self._contexts: dict[tuple[str | None, ...], ssl.SSLContext] = {}

    def for_peer(
        self, host: str, where: str, options: Mapping[str, object]
    ) -> tuple[ssl.SSLContext | None, str | None]:
        """The context and server name for a peer; (None, None) without ``tls = true``."""
        if not options.get("tls", False):
            return None, None
        files = tuple(
            _path_or_none(options.get(name, self._defaults[name])) for name in _PEM_OPTIONS
        )
        context = self._contexts.get(files)
        if context is None:
            context = client_context(f"tcp peer {where}", *files)
            self._contexts[files] = context
        return context, str(options.get("server_name") or host)


# What [listen.tcp] and a tcp peer's table may hold: read by the node at start and by
# `net-relay plugins --options`; the constructor and _check_peer_options check the values.
LISTEN_OPTIONS: tuple[PluginOption, ...] = (
    PluginOption("max_packet_size", "integer", 64 * 1024 * 1024 + 64 * 1024,
                  "The largest packet sent or accepted, in bytes; it must cover the node's "
                  "max_message_size plus framing overhead."),
    PluginOption("batch_size", "integer", None,
                  "Frames are coalesced into packets up to this size, in bytes (default "
                  "256 KiB, or max_packet_size if smaller)."),
    PluginOption("queue_limit", "integer", 16 * 1024 * 1024,
                  "Bytes that may wait per destination; past it awaited sends wait."),
    PluginOption("connect_timeout", "number", 5.0,
                  "Seconds for one connection attempt, TLS handshake included."),
    PluginOption("backoff_initial", "number", 0.05,
                  "Seconds between the first failed attempt and the next."),
    PluginOption("backoff_max", "number", 5.0, "Cap of the wait between attempts, in seconds."),
    PluginOption("keepalive", "number", 15.0,
                  "Idle seconds before TCP keepalive probes; 0 turns them off."),
    PluginOption("idle_timeout", "number", 300.0,
                  "A connection idle for one to two such periods (s) is closed; 0: never."),
    PluginOption("max_connections", "integer", 1024,
                  "Accepted connections open at once, TLS handshakes included; 1..1048576."),
    PluginOption("handshake_timeout", "number", 10.0,
                  "Seconds an accepted connection has for its TLS handshake, then for its "
                  "first whole packet."),
    PluginOption("max_buffered_input", "integer", None,
                  "Bytes of unfinished packets all connections may hold together (default "
                  "and minimum: max_packet_size)."),
    PluginOption("max_object_size", "integer", None,
                  "The largest packet a connection reads, in bytes (default and at most "
                  "max_packet_size); a framing may bound its own lower."),
    *server_file_options(": with private_key, listen with TLS."),
    *client_file_options("peers with tls = true"),
    PluginOption("framing", "framing", None,
                  "How packets travel on accepted connections: a StreamFraming the node sets "
                  "(Heph's under heph_json; else the length prefix)."),
)
_PEER_FILES = peer_file_options("tls = true")
PEER_OPTIONS: tuple[PluginOption, ...] = (
    PluginOption("tls", "boolean", False, "Connect with TLS."),
    *(_PEER_FILES[name] for name in ("ca", "client_certificate", "client_key", "server_name")),
    PluginOption("framing", "framing", None,
                 "How packets travel on this peer's connection: a StreamFraming the node sets "
                 "(Heph's under format = \"heph-json\"; else the length prefix)."),
)
