"""TLS settings from config: certificate files checked and loaded into ``ssl`` contexts.

Nothing here knows about TCP, so any transport that takes PEM files from its
config (QUIC too) can check them the same way.

Rules this module keeps:

- Every problem with a setting is a :class:`~relay_core.ConfigError` that names
  the table, the option, its value and what is allowed; ``ssl`` and OS errors
  never escape.
- Contexts use the stdlib ``ssl`` module only: TLS 1.2 at least (1.3 preferred
  by OpenSSL's negotiation), certificates and host names always verified on the
  client side. There is no switch to skip verification: trust a self-signed
  certificate by naming it as the ``ca``.
- An encrypted private key is refused instead of making OpenSSL prompt for a
  passphrase on the terminal.
- The PEM file options are declared here once for every transport that takes
  them (tcp, quic), so their names, types and words cannot drift apart; a
  transport passes only the words that say how its own use differs.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from relay_core import ConfigError, PluginOption

__all__ = [
    "TLS_FILE_OPTIONS",
    "check_pem_path",
    "client_context",
    "client_file_options",
    "describe_tls_error",
    "peer_file_options",
    "server_context",
    "server_file_options",
]

_PEM_PATH = "a path (string) to a readable PEM file"


TLS_FILE_OPTIONS = frozenset(
    {"certificate", "private_key", "client_ca", "ca", "client_certificate", "client_key"})
"""The options that name PEM files, in ``[listen.SCHEME]`` and in peer tables: a TLS
transport's ``path_options``, which the node resolves against the config file's folder."""


def server_file_options(certificate_use: str) -> tuple[PluginOption, ...]:
    """``certificate``, ``private_key`` and ``client_ca`` of ``[listen.SCHEME]``: what the
    listener presents and whom it asks for client certificates. ``certificate_use`` ends
    the certificate's sentence: what a certificate with its key does for this transport."""
    return (
        PluginOption("certificate", "path", None, f"PEM certificate chain{certificate_use}"),
        PluginOption("private_key", "path", None, "PEM private key of certificate."),
        PluginOption("client_ca", "path", None,
                     "PEM CA certificates: require client certificates they signed."),
    )


def client_file_options(peers: str) -> tuple[PluginOption, ...]:
    """``ca``, ``client_certificate`` and ``client_key`` of ``[listen.SCHEME]``: the defaults
    for the peers that ``peers`` names, which a peer's own table overrides."""
    return (
        PluginOption("ca", "path", None, f"Default CA for {peers} (else the system trust store)."),
        PluginOption("client_certificate", "path", None, f"Default client certificate for {peers}."),
        PluginOption("client_key", "path", None, "Private key of client_certificate."),
    )


def peer_file_options(condition: str = "") -> dict[str, PluginOption]:
    """A peer table's ``ca``, ``client_certificate``, ``client_key`` and ``server_name``, by
    name (each transport lists them in its own order); ``condition`` is what else they
    need in that table (``"tls = true"``), if anything."""
    needs = f"{condition} and " if condition else ""
    return {
        "ca": PluginOption(
            "ca", "path", None, "PEM CA certificates the server must chain to"
            + (f" (with {condition})." if condition else ".")),
        "client_certificate": PluginOption(
            "client_certificate", "path", None,
            f"PEM client certificate to present (with {needs}client_key)."),
        "client_key": PluginOption("client_key", "path", None,
                                   "Private key of client_certificate."),
        "server_name": PluginOption(
            "server_name", "string", None,
            "The name the server's certificate must carry (default: the address host)."),
    }


def check_pem_path(where: str, name: str, value: object) -> str:
    """Return ``value`` as a path string if it names a readable file, else raise ConfigError."""
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise ConfigError(f"[{where}] {name} = {value!r} is not allowed: {_PEM_PATH}")
    path = Path(value)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(
            f"[{where}] {name} = {str(value)!r}: no readable file there; expected {_PEM_PATH}"
        )
    return str(path)


def server_context(
    where: str, certificate: str, private_key: str, client_ca: str | None = None
) -> ssl.SSLContext:
    """A server context presenting ``certificate``; with ``client_ca``, clients must
    present a certificate that it signed (mutual TLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_pair(context, where, ("certificate", certificate), ("private_key", private_key))
    if client_ca is not None:
        _load_trust(context, where, "client_ca", client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(
    where: str,
    ca: str | None = None,
    certificate: str | None = None,
    private_key: str | None = None,
) -> ssl.SSLContext:
    """A client context that verifies servers against ``ca`` (default: the system trust
    store) and presents ``certificate`` to servers that ask for one."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies chain and host name
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        _load_trust(context, where, "ca", ca)
    if certificate is not None and private_key is not None:
        _load_pair(context, where, ("client_certificate", certificate), ("client_key", private_key))
    return context


def describe_tls_error(error: BaseException) -> str:
    """A one-line reason for a failed handshake, without OpenSSL's source locations."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError) and error.reason:
        return error.reason.replace("_", " ").lower()
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _refuse_passphrase() -> bytes:
    raise ConfigError("the private key is encrypted; net-relay needs an unencrypted PEM key file")


def _load_pair(
    context: ssl.SSLContext, where: str, certificate: tuple[str, str], key: tuple[str, str]
) -> None:
    try:
        context.load_cert_chain(certificate[1], key[1], password=_refuse_passphrase)
    except ConfigError as exc:
        raise ConfigError(f"[{where}] {key[0]} = {key[1]!r}: {exc}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"[{where}] {certificate[0]} = {certificate[1]!r}, {key[0]} = {key[1]!r}: cannot load "
            f"them ({describe_tls_error(exc)}); expected a PEM certificate (chain) and the "
            "unencrypted PEM private key that matches it"
        ) from None


def _load_trust(context: ssl.SSLContext, where: str, name: str, path: str) -> None:
    try:
        context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(
            f"[{where}] {name} = {path!r}: cannot load it ({describe_tls_error(exc)});"
            " expected one or more PEM CA certificates"
        ) from None
