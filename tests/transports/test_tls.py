"""TLS on the tcp transport: verified servers, mutual TLS, and what a TLS port does with bad clients."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_tcp_transport import WAIT_LIMIT, Recorder, tcp

from certs import Pki
from relay_core import ConfigError
from relay_transports import _tcp_tls_listener
from relay_transports._tcp import TcpTransport
from relay_transports._tls import client_context, server_context


def serving(pki: Pki, **options: object) -> dict[str, Any]:
    return {"certificate": str(pki.server_cert), "private_key": str(pki.server_key), **options}


def trusting(pki: Pki, **options: object) -> dict[str, Any]:
    return {"tls": True, "ca": str(pki.ca_cert), **options}


def with_client_certificate(pki: Pki) -> dict[str, Any]:
    return trusting(pki, client_certificate=str(pki.client_cert), client_key=str(pki.client_key))


@contextlib.contextmanager
def _either_closed() -> Iterator[None]:
    """A peer that closes a connection may end it with EOF or with a reset."""
    with contextlib.suppress(ConnectionResetError):
        yield


# -- verified servers ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_server_with_a_certificate_from_the_trusted_ca_is_accepted(
    pki: Pki, host: str
) -> None:
    server_events, client_events = Recorder(), Recorder()
    async with tcp(server_events, **serving(pki)) as server, tcp(client_events) as client:
        _, port = await server.listen("127.0.0.1", 0)
        destination = await client.prepare(host, port, trusting(pki))
        client.send(destination, b"over tls")
        await server_events.until(lambda: len(server_events.packets) == 1)
        server.send(server_events.packets[0][1], b"reply over tls")
        await client_events.until(lambda: len(client_events.packets) == 1)
    assert server_events.payloads == [b"over tls"]
    assert client_events.payloads == [b"reply over tls"]


async def test_the_trusted_ca_can_be_a_transport_wide_default(pki: Pki) -> None:
    server_events = Recorder()
    async with (
        tcp(server_events, **serving(pki)) as server,
        tcp(Recorder(), ca=str(pki.ca_cert)) as client,
    ):
        destination = await client.prepare(*await server.listen("127.0.0.1", 0), {"tls": True})
        client.send(destination, b"trusted by default")
        await server_events.until(lambda: len(server_events.packets) == 1)


async def test_a_server_certificate_from_another_ca_is_rejected(pki: Pki) -> None:
    server_events, client_events = Recorder(), Recorder()
    other = {"certificate": str(pki.other_server_cert), "private_key": str(pki.other_server_key)}
    async with tcp(server_events, **other) as server, tcp(client_events) as client:
        destination = await client.prepare(*await server.listen("127.0.0.1", 0), trusting(pki))
        client.send(destination, b"must not arrive")
        await client_events.until(lambda: bool(client_events.failed_with("certificate verify")))
    assert server_events.packets == []


async def test_a_server_name_that_the_certificate_does_not_carry_is_rejected(pki: Pki) -> None:
    server_events, client_events = Recorder(), Recorder()
    async with tcp(server_events, **serving(pki)) as server, tcp(client_events) as client:
        _, port = await server.listen("127.0.0.1", 0)
        options = trusting(pki, server_name="example.org")
        destination = await client.prepare("127.0.0.1", port, options)
        client.send(destination, b"must not arrive")
        await client_events.until(lambda: bool(client_events.failed_with("example.org")))
    assert server_events.packets == []


async def test_a_plain_client_cannot_talk_to_a_tls_listener_and_the_listener_keeps_serving(
    pki: Pki,
) -> None:
    server_events = Recorder()
    async with tcp(server_events, **serving(pki)) as server, tcp(Recorder()) as client:
        host, port = await server.listen("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n" + bytes(range(256)))
        async with asyncio.timeout(WAIT_LIMIT):
            with _either_closed():
                await reader.read()
        writer.close()
        destination = await client.prepare(host, port, trusting(pki))
        client.send(destination, b"still served")
        await server_events.until(lambda: len(server_events.packets) == 1)
    assert server_events.payloads == [b"still served"]


async def test_a_failed_handshake_is_logged_by_the_listener(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    async with tcp(Recorder(), **serving(pki)) as server:
        host, port = await server.listen("127.0.0.1", 0)
        with caplog.at_level(logging.WARNING, logger="relay_transports._tcp"):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"\x00" * 64)
            async with asyncio.timeout(WAIT_LIMIT):
                with _either_closed():
                    await reader.read()
            writer.close()
    # the listener logs as it closes the connection, before the client can see the close
    assert "tls handshake with tcp client 127.0.0.1" in caplog.text


class _ExhaustedOnce:
    """A listening socket whose first accept fails as if the process had no descriptors left."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.failed = False

    def accept(self) -> tuple[socket.socket, Any]:
        if not self.failed:
            self.failed = True
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return self.sock.accept()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


async def test_a_listener_out_of_descriptors_rests_logs_it_and_then_accepts_again(
    pki: Pki, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_tcp_tls_listener, "_RETRY_DELAY", 0.05)
    server_events = Recorder()
    async with tcp(server_events, **serving(pki)) as server, tcp(Recorder()) as client:
        host, port = await server.listen("127.0.0.1", 0)
        (listener,) = [s for s in server._inbound.listeners
                       if isinstance(s, _tcp_tls_listener.Listener)]
        exhausted = _ExhaustedOnce(listener.sock)
        listener.sock = exhausted  # type: ignore[assignment]
        with caplog.at_level(logging.WARNING, logger="relay_transports._tcp"):
            destination = await client.prepare(host, port, trusting(pki))
            client.send(destination, b"accepted after the rest")
            await server_events.until(lambda: len(server_events.packets) == 1)
    assert exhausted.failed
    assert server_events.payloads == [b"accepted after the rest"]
    assert server_events.dropped == [((host, port), "connections_refused")]
    assert "cannot accept connections: Too many open files; trying again" in caplog.text


async def test_a_client_that_never_starts_its_handshake_is_cut_off_at_handshake_timeout(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    events = Recorder()
    async with tcp(events, handshake_timeout=0.2, **serving(pki)) as server:
        host, port = await server.listen("127.0.0.1", 0)
        with caplog.at_level(logging.WARNING, logger="relay_transports._tcp"):
            reader, writer = await asyncio.open_connection(host, port)
            async with asyncio.timeout(WAIT_LIMIT):
                with _either_closed():
                    assert await reader.read() == b""
            writer.close()
    assert "no TLS handshake or no whole packet within handshake_timeout = 0.2 s" in caplog.text
    assert [reason for _, reason in events.dropped] == ["connections_timed_out"]


async def test_closing_with_handshakes_under_way_leaves_no_connection_open(pki: Pki) -> None:
    async with tcp(Recorder(), **serving(pki)) as server:
        host, port = await server.listen("127.0.0.1", 0)
        silent = [await asyncio.open_connection(host, port) for _ in range(3)]
    for reader, writer in silent:
        async with asyncio.timeout(WAIT_LIMIT):
            with _either_closed():
                assert await reader.read() == b""
        writer.close()
    assert not server._inbound.unclaimed and not server._tasks


# -- mutual TLS ---------------------------------------------------------------------


async def test_mutual_tls_accepts_a_client_certificate_from_the_client_ca(pki: Pki) -> None:
    server_events = Recorder()
    listener = serving(pki, client_ca=str(pki.ca_cert))
    async with tcp(server_events, **listener) as server, tcp(Recorder()) as client:
        destination = await client.prepare(
            *await server.listen("127.0.0.1", 0), with_client_certificate(pki)
        )
        client.send(destination, b"authenticated")
        await server_events.until(lambda: len(server_events.packets) == 1)
    assert server_events.payloads == [b"authenticated"]


async def test_mutual_tls_rejects_a_client_without_a_certificate(pki: Pki) -> None:
    server_events, anonymous_events = Recorder(), Recorder()
    listener = serving(pki, client_ca=str(pki.ca_cert))
    async with (
        tcp(server_events, **listener) as server,
        tcp(anonymous_events) as anonymous,
        tcp(Recorder()) as authenticated,
    ):
        address = await server.listen("127.0.0.1", 0)
        destination = await anonymous.prepare(*address, trusting(pki))
        anonymous.send(destination, b"must not arrive")
        await anonymous_events.until(lambda: bool(anonymous_events.failures))
        # a packet from an authenticated client marks the point by which the first would show
        barrier = await authenticated.prepare(*address, with_client_certificate(pki))
        authenticated.send(barrier, b"authenticated")
        await server_events.until(lambda: len(server_events.packets) == 1)
    assert server_events.payloads == [b"authenticated"]


# -- configuration ---------------------------------------------------------------------


def test_certificate_and_private_key_go_together(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="certificate and private_key go together"):
        TcpTransport(Recorder(), certificate=str(pki.server_cert))


def test_client_ca_needs_a_server_certificate(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="client_ca needs certificate and private_key"):
        TcpTransport(Recorder(), client_ca=str(pki.ca_cert))


def test_a_missing_certificate_file_is_named(pki: Pki, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ConfigError, match="certificate = '.*missing.pem': no readable file"):
        TcpTransport(Recorder(), certificate=missing, private_key=str(pki.server_key))


def test_a_key_that_does_not_match_the_certificate_is_refused(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="cannot load them .*the unencrypted PEM private key"):
        TcpTransport(Recorder(), **serving(pki, private_key=str(pki.client_key)))


def test_a_file_that_is_not_a_ca_certificate_is_refused(pki: Pki, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="client_ca = .*garbage.pem.*PEM CA certificates"):
        TcpTransport(Recorder(), **serving(pki, client_ca=str(garbage)))


def test_an_encrypted_private_key_is_refused_without_a_passphrase_prompt(
    pki: Pki, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted = tmp_path / "encrypted-key.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(ConfigError, match="private_key = .*: the private key is encrypted"):
        TcpTransport(Recorder(), **serving(pki, private_key=str(encrypted)))


def test_client_certificate_and_client_key_go_together(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="client_certificate and client_key go together"):
        TcpTransport.check_peer_options(
            trusting(pki, client_certificate=str(pki.client_cert)), "peers.beta"
        )


def test_peer_tls_options_are_accepted(pki: Pki) -> None:
    TcpTransport.check_peer_options(with_client_certificate(pki), "peers.beta")
    TcpTransport.check_peer_options(trusting(pki, server_name="localhost"), "peers.beta")


def test_contexts_refuse_anything_older_than_tls_1_2(pki: Pki) -> None:
    server = server_context("t", str(pki.server_cert), str(pki.server_key))
    client = client_context("t", str(pki.ca_cert))
    assert server.minimum_version == client.minimum_version == ssl.TLSVersion.TLSv1_2
    assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED
