"""Throwaway certificates for TLS tests: ``make_pki(directory)`` writes a small PKI.

Two unrelated CAs: ``ca`` signs a server certificate (valid for 127.0.0.1, ::1
and localhost) and a client certificate; ``other_ca`` signs another server
certificate, for tests where the client must reject the server. Keys are
unencrypted PEM (P-256, quick to make); certificates are valid from a day ago
for thirty days and carry the key identifiers strict verifiers expect.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Pki", "make_pki"]

SERVER_NAMES: tuple[x509.GeneralName, ...] = (
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
    x509.DNSName("localhost"),
)


@dataclass(frozen=True, slots=True)
class Pki:
    """Paths of the PEM files :func:`make_pki` wrote."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path
    """A CA that signed nothing above: trusting it must not let ``server_cert`` pass."""
    other_server_cert: Path
    """Signed by ``other_ca_cert``, with the same names as ``server_cert``."""
    other_server_key: Path


@dataclass(frozen=True, slots=True)
class _Issuer:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def make_pki(directory: Path) -> Pki:
    """Write two CAs and their server and client certificates into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _make_ca("net-relay test CA")
    other = _make_ca("unrelated test CA")
    server_cert, server_key = _write_leaf(directory, "server", ca, ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = _write_leaf(directory, "client", ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    other_cert, other_key = _write_leaf(
        directory, "other-server", other, ExtendedKeyUsageOID.SERVER_AUTH
    )
    return Pki(
        ca_cert=_write(directory / "ca.pem", _pem(ca.certificate)),
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client_cert,
        client_key=client_key,
        other_ca_cert=_write(directory / "other-ca.pem", _pem(other.certificate)),
        other_server_cert=other_cert,
        other_server_key=other_key,
    )


def _make_ca(common_name: str) -> _Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    builder = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    return _Issuer(builder.sign(key, hashes.SHA256()), key)


def _write_leaf(
    directory: Path, stem: str, issuer: _Issuer, purpose: x509.ObjectIdentifier
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(f"{stem}.test"), issuer.certificate.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    if purpose == ExtendedKeyUsageOID.SERVER_AUTH:
        builder = builder.add_extension(x509.SubjectAlternativeName(SERVER_NAMES), critical=False)
    certificate = builder.sign(issuer.key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return (
        _write(directory / f"{stem}.pem", _pem(certificate)),
        _write(directory / f"{stem}-key.pem", key_pem),
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
