"""Handshakes that never complete, at the quic listener.

Each attacker is aioquic's client-side ``QuicConnection`` driven by hand over one
UDP socket, sending Initials in windows of ``WINDOW``:

- ``spoofed initials``: an Initial, then nothing, never reading a reply: what a
  flood from forged source addresses looks like. Retry (on by default) answers
  each with a Retry packet and keeps nothing.
- ``abandoned handshakes``: an Initial, the Retry answered with the token, then
  nothing: a source that can receive but never finishes. The listener keeps at
  most ``max_handshakes`` of them, dropping the oldest for each new one.
- ``... retry off``: the same Initials at a listener with ``retry = false``, so
  each one opens a connection (the reported attack, at its reported sizes).

After the flood, the attack waits until the victim's abandoned handshakes have
timed out (``idle_timeout`` = 5 s here), and reads its memory again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aioquic._buffer import Buffer
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicPacketType, pull_quic_header

from relay_transports._quic import ALPN

from ._victim import Victim

IDLE_TIMEOUT = 5.0
WINDOW = 100  # Initials in flight at once
RETRY_WAIT = 2.0  # seconds a window waits for its Retry packets
MEBIBYTE = 1024 * 1024


def _victim(retry: bool) -> str:
    return f"""
[node]
name = "victim"

[listen.quic]
host = "127.0.0.1"
port = 0
certificate = "cert.pem"
private_key = "key.pem"
idle_timeout = {IDLE_TIMEOUT}
retry = {str(retry).lower()}
"""


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.datagrams.put_nowait(data)


def _client(target: tuple[str, int]) -> QuicConnection:
    client = QuicConnection(configuration=QuicConfiguration(
        is_client=True, alpn_protocols=[ALPN], server_name="localhost"))
    client.connect(target, now=time.monotonic())
    return client


async def _flood(victim: Victim, count: int, answer_retry: bool) -> dict[str, object]:
    host, port = victim.address("quic").removeprefix("quic://").rsplit(":", 1)
    target = (host, int(port))
    inbox = _Inbox()
    udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: inbox, remote_addr=target)
    sent = sent_bytes = retries = 0
    try:
        for start in range(0, count, WINDOW):
            waiting: dict[bytes, QuicConnection] = {}
            for _ in range(min(WINDOW, count - start)):
                client = _client(target)
                for datagram, _ in client.datagrams_to_send(now=time.monotonic()):
                    udp.sendto(datagram)
                    sent, sent_bytes = sent + 1, sent_bytes + len(datagram)
                waiting[client.host_cid] = client
            if answer_retry:
                answered = await _answer_retries(inbox, waiting, udp, target)
                retries, sent = retries + answered, sent + answered
            await asyncio.sleep(0)
            while not inbox.datagrams.empty():  # what the victim said: not needed
                inbox.datagrams.get_nowait()
    finally:
        udp.close()
    return {"handshakes opened": count, "datagrams sent": sent,
            "MB sent": round(sent_bytes / 1e6, 1), "retries answered": retries}


async def _answer_retries(inbox: _Inbox, waiting: dict[bytes, QuicConnection],
                          udp: asyncio.DatagramTransport, target: tuple[str, int]) -> int:
    answered = 0
    try:
        async with asyncio.timeout(RETRY_WAIT):
            while answered < len(waiting):
                datagram = await inbox.datagrams.get()
                header = pull_quic_header(Buffer(data=datagram), host_cid_length=8)
                client = waiting.get(header.destination_cid)
                if header.packet_type != QuicPacketType.RETRY or client is None:
                    continue
                client.receive_datagram(datagram, target, now=time.monotonic())
                for reply, _ in client.datagrams_to_send(now=time.monotonic()):
                    udp.sendto(reply)
                answered += 1
    except TimeoutError:
        pass
    return answered


def _attack(count: int, answer_retry: bool
            ) -> Callable[[Victim, float], Awaitable[dict[str, object]]]:
    async def attack(victim: Victim, scale: float) -> dict[str, object]:
        options: dict[str, object] = {"ca": str(victim.directory / "cert.pem")}
        started = time.perf_counter()
        figures = await _flood(victim, max(1, int(count * scale)), answer_retry)
        figures["flood seconds"] = round(time.perf_counter() - started, 2)
        peak = victim.rss()
        stats = await victim.stats("quic", options)
        total = stats["total"]
        assert isinstance(total, dict)
        await asyncio.sleep(IDLE_TIMEOUT * 2)  # the abandoned handshakes time out
        return {**figures, "rss right after MiB": round(peak / MEBIBYTE, 1),
                "rss once timed out MiB": round(victim.rss() / MEBIBYTE, 1),
                "handshakes dropped": total["handshakes_dropped"],
                "connections refused": total["connections_refused"],
                "forged delivered": total["messages_received"] - 1,  # the stats request
                "prober options": options}

    return attack


ATTACKS = {
    "quic spoofed initials 6000": (_victim(True), _attack(6000, False)),
    "quic spoofed initials 10000": (_victim(True), _attack(10_000, False)),
    "quic abandoned handshakes 6000": (_victim(True), _attack(6000, True)),
    "quic abandoned handshakes 10000": (_victim(True), _attack(10_000, True)),
    "quic initials retry off 6000": (_victim(False), _attack(6000, False)),
    "quic initials retry off 10000": (_victim(False), _attack(10_000, False)),
}
