"""Certificates for the TLS transports: make a self-signed one, load PEM files into objects.

:func:`generate_self_signed` backs ``net-relay gen-cert``: a development
certificate that a listener presents and that clients trust by naming the same
file as their ``ca``. The loaders turn the PEM files a config names into
``cryptography`` objects for aioquic, which takes objects rather than paths.

Rules this module keeps:

- Every problem with a file or a value is a :class:`~relay_core.ConfigError`
  naming the table, the option, the value and what is allowed; errors from
  ``cryptography`` or the OS never escape.
- A key that does not match its certificate, or that TLS 1.3 cannot sign with,
  is refused when the config is loaded, not at the first handshake.
- A generated private key is written readable by its owner only, and existing
  files are kept unless the caller asks to overwrite them.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from relay_core import ConfigError

__all__ = [
    "DEFAULT_HOSTS",
    "CertificateChain",
    "GeneratedCertificate",
    "PrivateKey",
    "generate_self_signed",
    "load_certificate_chain",
    "load_trust_anchors",
]

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
"""Names a development certificate is valid for when the caller names none."""

PrivateKey = (
    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)
"""The key types TLS 1.3 (as aioquic speaks it) can sign a handshake with."""

_SIGNING_CURVES = (ec.SECP256R1, ec.SECP384R1)  # the ECDSA schemes aioquic offers
_MAX_DAYS = 3650
_KEY_FILE_MODE = 0o600
_SIGNATURE_ONLY = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
    encipher_only=False, decipher_only=False,
)
_CERT_FILE_MODE = 0o644


@dataclass(frozen=True, slots=True)
class CertificateChain:
    """A certificate to present, the intermediates sent with it, and its private key."""

    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    private_key: PrivateKey


@dataclass(frozen=True, slots=True)
class GeneratedCertificate:
    """What :func:`generate_self_signed` wrote, for the command to tell its user."""

    certificate_path: Path
    key_path: Path
    hosts: tuple[str, ...]
    fingerprint: str
    """SHA-256 of the certificate (DER), as colon-separated hex."""
    not_after: datetime.datetime


def generate_self_signed(
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
    hosts: Sequence[str] = DEFAULT_HOSTS,
    days: int = 365,
    *,
    overwrite: bool = False,
) -> GeneratedCertificate:
    """Write a self-signed certificate for ``hosts`` (names or IP literals) and its key.

    The key is ECDSA P-256. The certificate serves as a server and as a client
    certificate, and clients trust it by naming ``cert_path`` as their ``ca``.
    Raises ConfigError for bad hosts or days, or a file that exists (unless
    ``overwrite``) or cannot be written.
    """
    names = _subject_alternative_names(hosts)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= _MAX_DAYS:
        raise ConfigError(f"days = {days!r} is not allowed: an integer from 1 to {_MAX_DAYS}")
    paths = Path(cert_path), Path(key_path)
    if not overwrite:
        _refuse_existing(paths)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _self_signed(key, tuple(hosts), names, days)
    _write(paths[1], _key_pem(key), _KEY_FILE_MODE)
    _write(paths[0], certificate.public_bytes(serialization.Encoding.PEM), _CERT_FILE_MODE)
    return GeneratedCertificate(
        certificate_path=paths[0],
        key_path=paths[1],
        hosts=tuple(hosts),
        fingerprint=certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
        not_after=certificate.not_valid_after_utc,
    )


def load_certificate_chain(
    where: str, certificate: tuple[str, object], private_key: tuple[str, object]
) -> CertificateChain:
    """Load a PEM certificate (then its intermediates) and the unencrypted key that matches it.

    ``certificate`` and ``private_key`` are (option name, value) pairs, so errors
    can say which setting of ``[where]`` is wrong.
    """
    chain = _read_certificates(where, *certificate)
    key = _read_private_key(where, *private_key)
    if _public_der(key) != chain[0].public_key().public_bytes(*_SPKI):
        raise ConfigError(
            f"[{where}] {private_key[0]} = {private_key[1]!r} is not the key of "
            f"{certificate[0]} = {certificate[1]!r}; expected the private key that matches it"
        )
    return CertificateChain(chain[0], tuple(chain[1:]), key)


def load_trust_anchors(where: str, option: str, path: object) -> bytes:
    """Return the CA certificates in a PEM file, re-encoded as clean PEM for aioquic."""
    certificates = _read_certificates(where, option, path)
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _public_der(key: PrivateKey) -> bytes:
    return key.public_key().public_bytes(*_SPKI)


def _read(where: str, option: str, path: object) -> bytes:
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ConfigError(f"[{where}] {option} = {path!r} is not allowed: a path to a PEM file")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"[{where}] {option} = {str(path)!r}: cannot read it ({reason}); "
                          "expected a readable PEM file") from None


def _read_certificates(where: str, option: str, path: object) -> list[x509.Certificate]:
    data = _read(where, option, path)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if not certificates:
        raise ConfigError(f"[{where}] {option} = {str(path)!r} holds no PEM certificate; "
                          "expected one or more '-----BEGIN CERTIFICATE-----' blocks")
    return certificates


def _read_private_key(where: str, option: str, path: object) -> PrivateKey:
    data = _read(where, option, path)
    problem = "expected an unencrypted PEM private key (RSA, ECDSA P-256/P-384, Ed25519 or Ed448)"
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(f"[{where}] {option} = {str(path)!r} is encrypted; {problem}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"[{where}] {option} = {str(path)!r} is not a key; {problem}") from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, _SIGNING_CURVES):
        return key
    if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return key
    raise ConfigError(f"[{where}] {option} = {str(path)!r}: TLS 1.3 cannot sign with this kind "
                      f"of key; {problem}")


def _subject_alternative_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    if isinstance(hosts, str) or not hosts:
        raise ConfigError(f"hosts = {hosts!r} is not allowed: a non-empty list of host names "
                          "or IP addresses")
    return [_general_name(host) for host in hosts]


def _general_name(host: object) -> x509.GeneralName:
    if not isinstance(host, str):
        raise ConfigError(f"host {host!r} is not allowed: a host name or an IP address")
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.removeprefix("*.").split(".")
    if not host.isascii() or not all(_is_label(label) for label in labels):
        raise ConfigError(f"host {host!r} is not allowed: a DNS name (ASCII letters, digits, "
                          "hyphens, dot-separated; IDNA for others; '*.' for a wildcard) or "
                          "an IP address")
    return x509.DNSName(host)


def _is_label(label: str) -> bool:
    return 0 < len(label) <= 63 and label.replace("-", "").isalnum() and label[0] != "-"


def _self_signed(
    key: ec.EllipticCurvePrivateKey, hosts: tuple[str, ...], names: list[x509.GeneralName],
    days: int,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])])
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    purposes = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))  # tolerates a clock a little behind
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_SIGNATURE_ONLY, critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _refuse_existing(paths: tuple[Path, Path]) -> None:
    existing = [str(path) for path in paths if path.exists()]
    if existing:
        raise ConfigError(f"{', '.join(existing)} already exist(s); choose other paths or "
                          "allow overwriting")


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` created with ``mode``, so a key is never readable by others."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)  # O_CREAT's mode is ignored for an existing file
            file.write(data)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot write {str(path)!r}: {reason}") from None
