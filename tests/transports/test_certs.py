"""Certificates for TLS: ``generate_self_signed`` (behind ``net-relay gen-cert``) and the loaders.

A generated certificate must be one a QUIC listener presents and a client
trusts by naming it as its ``ca``; every bad input is a ConfigError that says
what was wrong.
"""

from __future__ import annotations

import asyncio
import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from certs import Pki
from relay_core import ConfigError, HostPort, TransportError
from relay_transports._certs import (
    DEFAULT_HOSTS,
    _general_name,
    generate_self_signed,
    load_certificate_chain,
    load_trust_anchors,
)
from relay_transports._quic import QuicTransport

WAIT_LIMIT = 20.0


class Inbox:
    def __init__(self) -> None:
        self.packets: asyncio.Queue[bytes] = asyncio.Queue()
        self.failures: list[BaseException] = []

    def packet_received(self, packet: bytes, source: HostPort) -> None:
        self.packets.put_nowait(packet)

    def send_failed(self, destination: HostPort | None, error: BaseException) -> None:
        self.failures.append(error)

    def packets_unsent(self, destination: HostPort, packets: list[bytes], reason: str) -> None:
        self.failures.append(TransportError(f"{len(packets)} packets unsent: {reason}"))

    def input_malformed(self, source: HostPort, error: BaseException) -> None:
        self.failures.append(error)



def _read_certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


# -- generate_self_signed ---------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
async def test_a_generated_certificate_serves_a_listener_its_clients_trust(
    tmp_path: Path, host: str
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    generate_self_signed(cert, key)
    inbox = Inbox()
    listener = QuicTransport(inbox, certificate=str(cert), private_key=str(key))
    client = QuicTransport(Inbox(), ca=str(cert))
    try:
        _, port = await listener.listen("127.0.0.1" if host != "::1" else "::1", 0)
        destination = await client.prepare(host, port)
        client.send(destination, b"trusted")
        async with asyncio.timeout(WAIT_LIMIT):
            assert await inbox.packets.get() == b"trusted"
    finally:
        await client.close()
        await listener.close()


def test_the_certificate_names_every_host_and_nothing_else(tmp_path: Path) -> None:
    hosts = ("relay.example", "10.1.2.3", "fd00::7", "*.nodes.example")
    info = generate_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", hosts=hosts)
    certificate = _read_certificate(tmp_path / "c.pem")
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"relay.example", "*.nodes.example"}
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("10.1.2.3"), ipaddress.ip_address("fd00::7")}
    assert info.hosts == hosts


def test_the_default_hosts_are_the_loopback_names(tmp_path: Path) -> None:
    info = generate_self_signed(tmp_path / "c.pem", tmp_path / "k.pem")
    assert info.hosts == DEFAULT_HOSTS == ("localhost", "127.0.0.1", "::1")


def test_the_certificate_lasts_the_days_asked_for(tmp_path: Path) -> None:
    info = generate_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", days=10)
    certificate = _read_certificate(tmp_path / "c.pem")
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert 10 * 86400 <= lifetime.total_seconds() <= 10 * 86400 + 7200
    assert info.not_after == certificate.not_valid_after_utc


def test_the_key_file_is_readable_by_its_owner_only_and_matches(tmp_path: Path) -> None:
    info = generate_self_signed(tmp_path / "c.pem", tmp_path / "k.pem")
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    chain = load_certificate_chain("gen", ("certificate", info.certificate_path),
                                   ("private_key", info.key_path))
    assert isinstance(chain.private_key, ec.EllipticCurvePrivateKey)
    assert info.fingerprint.count(":") == 31


def test_existing_files_are_kept_unless_overwriting_is_asked_for(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    first = generate_self_signed(cert, key)
    with pytest.raises(ConfigError, match="already exist"):
        generate_self_signed(cert, key)
    assert _read_certificate(cert).fingerprint is not None
    second = generate_self_signed(cert, key, overwrite=True)
    assert second.fingerprint != first.fingerprint
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


@pytest.mark.parametrize("hosts", [(), "localhost", ("",), ("has space",), ("-bad.example",),
                                   ("ünïcode.example",), (42,), ("a..b",)])
def test_bad_hosts_are_refused(tmp_path: Path, hosts: object) -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        generate_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", hosts=hosts)  # type: ignore[arg-type]
    assert not (tmp_path / "k.pem").exists()


@pytest.mark.parametrize("days", [0, -1, 3651, 1.5, True])
def test_bad_lifetimes_are_refused(tmp_path: Path, days: object) -> None:
    with pytest.raises(ConfigError, match="days"):
        generate_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", days=days)  # type: ignore[arg-type]


def test_an_unwritable_place_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write"):
        generate_self_signed(tmp_path / "missing" / "c.pem", tmp_path / "missing" / "k.pem")


@given(st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z][a-z0-9-]{0,9}[a-z0-9]){0,3}",
                     fullmatch=True))
def test_any_dns_name_is_accepted(name: str) -> None:
    assert _general_name(name) == x509.DNSName(name)


# -- loaders ------------------------------------------------------------------------


def test_a_chain_loads_with_its_key(pki: Pki) -> None:
    chain = load_certificate_chain("listen.quic", ("certificate", str(pki.server_cert)),
                                   ("private_key", str(pki.server_key)))
    assert chain.certificate == _read_certificate(pki.server_cert)
    assert chain.intermediates == ()


def test_a_key_of_another_certificate_is_refused(pki: Pki) -> None:
    with pytest.raises(ConfigError, match=r"\[listen.quic\] private_key = .* is not the key"):
        load_certificate_chain("listen.quic", ("certificate", str(pki.server_cert)),
                               ("private_key", str(pki.client_key)))


def test_an_encrypted_key_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "locked.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"secret")))
    generate_self_signed(tmp_path / "c.pem", tmp_path / "k.pem")
    with pytest.raises(ConfigError, match="encrypted"):
        load_certificate_chain("x", ("certificate", str(tmp_path / "c.pem")),
                               ("private_key", str(path)))


def test_a_key_tls13_cannot_sign_with_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p521.pem"
    key = ec.generate_private_key(ec.SECP521R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    generate_self_signed(tmp_path / "c.pem", tmp_path / "k.pem")
    with pytest.raises(ConfigError, match="cannot sign"):
        load_certificate_chain("x", ("certificate", str(tmp_path / "c.pem")),
                               ("private_key", str(path)))


@pytest.mark.parametrize("content, complaint", [
    (b"", "no PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "no PEM certificate"),
    (None, "cannot read"),
])
def test_trust_anchors_must_be_pem_certificates(
    tmp_path: Path, content: bytes | None, complaint: str
) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=complaint) as refused:
        load_trust_anchors("peers.beta", "ca", str(path))
    assert "[peers.beta] ca" in str(refused.value)


def test_trust_anchors_are_reencoded_one_certificate_after_another(pki: Pki,
                                                                   tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.ca_cert.read_bytes().rstrip() + b"\r\n"
                       + pki.other_ca_cert.read_bytes().rstrip())  # no final newline
    certificates = x509.load_pem_x509_certificates(load_trust_anchors("x", "ca", str(bundle)))
    assert [c.subject for c in certificates] == [_read_certificate(pki.ca_cert).subject,
                                                 _read_certificate(pki.other_ca_cert).subject]
