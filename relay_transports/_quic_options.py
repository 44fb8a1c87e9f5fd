"""The ``quic`` transport's options: ``[listen.quic]`` values and each peer's mode and TLS.

Every bad value raises :class:`~relay_core.ConfigError` naming the option and
what it allows; certificate files are loaded and checked here, once.
"""

from __future__ import annotations

import enum
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

from aioquic.quic.configuration import QuicConfiguration

from relay_core import ConfigError, PluginOption

from ._certs import CertificateChain, load_certificate_chain, load_trust_anchors
from ._tls import client_file_options, peer_file_options, server_file_options

ALPN = "net-relay/1"
"""The TLS application protocol both ends must offer."""

DEFAULT_MAX_PACKET_SIZE = 64 * 1024 * 1024 + 64 * 1024
"""64 MiB of frames plus room for the packet and frame headers."""

DEFAULT_MAX_CONNECTIONS = 1024
"""Connections one listener holds at most, handshakes included."""
DEFAULT_MAX_HANDSHAKES = 128
"""Handshakes one listener holds unfinished at most: each costs about 85 KB until it ends."""

_DEFAULT_BATCH_SIZE = 256 * 1024
_PEER_KEYS = ("mode", "ca", "server_name", "client_certificate", "client_key",
              "insecure_skip_verify")
# What a peer may send at first, per stream and per connection: a few batches in flight.
# aioquic doubles a window whenever more than half of it has arrived, whether or not it was
# used, so this bounds no memory; max_buffered_input does (docs/limits.md).
_FLOW_WINDOW = 8 * 1024 * 1024
_MAX_UDP_PAYLOAD = 65527  # what one IPv4 datagram can carry after the UDP header


class _Mode(enum.Enum):
    STREAM = "stream"
    DATAGRAM = "datagram"


def _integer(where: str, name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"[{where}] {name} = {value!r} is not allowed: an integer from "
                          f"{low} to {high}")
    return value


def _boolean(where: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"[{where}] {name} = {value!r} is not allowed: true or false")
    return value


def _seconds(where: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ConfigError(f"[{where}] {name} = {value!r} is not allowed: a number of seconds "
                          "above 0, at most 3600")
    return float(value)


def _chain(where: str, options: Mapping[str, object], names: tuple[str, str]
           ) -> CertificateChain | None:
    """Load the certificate and key named by the two options, which come together or not at all."""
    given = [name for name in names if options.get(name) is not None]
    if not given:
        return None
    if len(given) == 1:
        missing = next(name for name in names if name not in given)
        raise ConfigError(f"[{where}] {given[0]} is set but {missing} is not; give both or neither")
    return load_certificate_chain(where, *((name, options[name]) for name in names))


@dataclass(frozen=True, slots=True)
class _PeerTls:
    """What one peer's ``[peers.NAME]`` table says about its mode and TLS."""

    mode: _Mode
    trust: bytes | None
    """PEM CA certificates that must have signed the server's; None: the transport default."""
    server_name: str | None
    """Name the server's certificate must carry; None: the host of its address."""
    chain: CertificateChain | None
    """Client certificate to present; None: the transport default."""
    insecure: bool


def _peer_tls(options: Mapping[str, object], where: str) -> _PeerTls:
    unknown = sorted(set(options) - set(_PEER_KEYS))
    if unknown:
        raise ConfigError(f"[{where}]: unknown key(s) {', '.join(unknown)}; quic peers take "
                          f"address, codec, compressor and {', '.join(_PEER_KEYS)}")
    mode = options.get("mode", _Mode.STREAM.value)
    if mode not in (_Mode.STREAM.value, _Mode.DATAGRAM.value):
        raise ConfigError(f'[{where}] mode = {mode!r} is not allowed: "stream" or "datagram"')
    server_name = options.get("server_name")
    if server_name is not None and (not isinstance(server_name, str) or not server_name):
        raise ConfigError(f"[{where}] server_name = {server_name!r} is not allowed: a host name "
                          "or IP address the server's certificate names")
    insecure = options.get("insecure_skip_verify", False)
    if not isinstance(insecure, bool):
        raise ConfigError(f"[{where}] insecure_skip_verify = {insecure!r} is not allowed: "
                          "true or false")
    if insecure and options.get("ca") is not None:
        raise ConfigError(f"[{where}] ca and insecure_skip_verify = true contradict each other; "
                          "drop insecure_skip_verify to verify the server against ca")
    ca = options.get("ca")
    return _PeerTls(
        mode=_Mode(mode),
        trust=None if ca is None else load_trust_anchors(where, "ca", ca),
        server_name=server_name,
        chain=_chain(where, options, ("client_certificate", "client_key")),
        insecure=insecure,
    )


def _trust_the_system_store(configuration: QuicConfiguration) -> None:
    """Verify servers against the operating system's CA store, as TLS over TCP does.

    Only paths that exist are named: a missing one would make the handshake
    raise inside aioquic. With neither, aioquic falls back to certifi's bundle.
    """
    paths = ssl.get_default_verify_paths()
    if paths.cafile or paths.capath:
        configuration.load_verify_locations(cafile=paths.cafile, capath=paths.capath)


# What [listen.quic] and a quic peer's table may hold: read by the node at start and by
# `net-relay plugins --options`; the constructor and _peer_tls check the values.
LISTEN_OPTIONS: tuple[PluginOption, ...] = (
    *server_file_options("; with private_key, required to listen."),
    PluginOption("max_packet_size", "integer", DEFAULT_MAX_PACKET_SIZE,
                 "The largest packet sent or accepted, in bytes; 1024..4294967295."),
    PluginOption("batch_size", "integer", None,
                 "Frames are coalesced into packets up to this size, in bytes (default "
                 "256 KiB, or max_packet_size if smaller)."),
    PluginOption("idle_timeout", "number", 30.0,
                 "Seconds without traffic before a connection is closed."),
    PluginOption("max_datagram_frame_size", "integer", 65536,
                 "The largest QUIC DATAGRAM frame taken (datagram mode); 0..65536."),
    PluginOption("udp_payload_size", "integer", 1200,
                 "Size of the UDP datagrams QUIC sends: 1200 passes any path."),
    PluginOption("queue_limit", "integer", 16 * 1024 * 1024,
                 "Bytes that may wait per destination while it connects."),
    PluginOption("max_connections", "integer", DEFAULT_MAX_CONNECTIONS,
                 "Connections one listener holds, unfinished handshakes included."),
    PluginOption("max_handshakes", "integer", None,
                 "Handshakes one listener holds unfinished (default 128, or "
                 "max_connections if lower)."),
    PluginOption("max_buffered_input", "integer", None,
                 "Bytes of unfinished packets all connections hold together (default and "
                 "minimum: max_packet_size)."),
    PluginOption("retry", "boolean", True,
                 "Every new client proves its address with a Retry round trip first."),
    *client_file_options("peers"),
)
_PEER_FILES = peer_file_options()
PEER_OPTIONS: tuple[PluginOption, ...] = (
    PluginOption("mode", "string", "stream",
                 "One reliable stream per connection, or unreliable QUIC datagrams.",
                 choices=("stream", "datagram")),
    *(_PEER_FILES[name] for name in ("ca", "server_name", "client_certificate", "client_key")),
    PluginOption("insecure_skip_verify", "boolean", False,
                 "Do not verify the server's certificate (tests only)."),
)
