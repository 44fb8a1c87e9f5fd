"""Handshakes that never complete, and packets never finished, at the quic listener.

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

- ``quic partial packets``: clients that finish their handshake, then each send
  a length promising 64 MiB and 60 MiB of it on their stream, and wait. The
  victim's connections together hold at most ``max_buffered_input`` (by default
  ``max_packet_size``, 64 MiB + 64 KiB) of unfinished packets, so it closes
  all but the first, counted ``connections_over_budget``. The attack asks the
  victim's echo from a fresh caller while they still hold what it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Awaitable, Callable

from aioquic._buffer import Buffer
from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicPacketType, pull_quic_header

from relay_transports._quic import ALPN

from ._victim import Victim

IDLE_TIMEOUT = 5.0
WINDOW = 100  # Initials in flight at once
RETRY_WAIT = 2.0  # seconds a window waits for its Retry packets
MEBIBYTE = 1024 * 1024


PARTIAL_CONNECTIONS = 8
PARTIAL_DECLARED = 64 * MEBIBYTE  # the length each one declares (under max_packet_size)
PARTIAL_SENT = 60 * MEBIBYTE  # what each one sends of it before waiting forever
IN_FLIGHT = 4 * MEBIBYTE  # what one attacker leaves unacknowledged at most, to bound its memory
SETTLE_LIMIT = 60.0  # seconds a connection may take to send its part, or to be closed
UDP_PAYLOAD = 16000  # the attacker's datagrams: fewer to encrypt and decrypt than at 1200



def _victim(retry: bool, idle_timeout: float = IDLE_TIMEOUT) -> str:
    return f"""
[node]
name = "victim"

[listen.quic]
host = "127.0.0.1"
port = 0
certificate = "cert.pem"
private_key = "key.pem"
idle_timeout = {idle_timeout}
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


async def _park(raw: QuicConnectionProtocol, sent: int) -> int:
    """Send a 64 MiB length and ``sent`` bytes of it; what went before the victim closed."""
    quic = raw._quic
    stream_id = quic.get_next_available_stream_id()
    sender = None
    written = 0
    deadline = time.monotonic() + SETTLE_LIMIT
    quic.send_stream_data(stream_id, struct.pack("!I", PARTIAL_DECLARED))
    while written < sent and not raw._closed.is_set() and time.monotonic() < deadline:
        sender = sender or quic._streams[stream_id].sender
        if len(sender._buffer) > IN_FLIGHT:  # unacknowledged: wait for the victim to read
            await asyncio.sleep(0.005)
            continue
        chunk = min(MEBIBYTE, sent - written)
        quic.send_stream_data(stream_id, bytes(chunk))
        raw.transmit()
        written += chunk
    return written


async def _closed(raws: list[QuicConnectionProtocol]) -> int:
    """How many of ``raws`` the victim closed, waiting up to SETTLE_LIMIT for all but one."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SETTLE_LIMIT):
            while sum(raw._closed.is_set() for raw in raws) < len(raws) - 1:
                await asyncio.sleep(0.05)
    return sum(raw._closed.is_set() for raw in raws)


async def partial_packets(victim: Victim, scale: float) -> dict[str, object]:
    """Connections that each park most of a 64 MiB packet and never finish it."""
    host, port = victim.address("quic").removeprefix("quic://").rsplit(":", 1)
    options: dict[str, object] = {"ca": str(victim.directory / "cert.pem")}
    configuration = QuicConfiguration(is_client=True, alpn_protocols=[ALPN],
                                      max_datagram_size=UDP_PAYLOAD)
    configuration.load_verify_locations(str(victim.directory / "cert.pem"))
    async with contextlib.AsyncExitStack() as stack:
        raws = [await stack.enter_async_context(connect(host, int(port),
                                                        configuration=configuration))
                for _ in range(max(1, int(PARTIAL_CONNECTIONS * scale)))]
        sent = await asyncio.gather(*(_park(raw, PARTIAL_SENT) for raw in raws))
        closed = await _closed(raws)
        rss_held = victim.rss()
        answered = await victim.answers_within(1.0, "quic", options)
        total = (await victim.stats("quic", options))["total"]
        assert isinstance(total, dict)
    return {"connections": len(raws), "MiB sent": round(sum(sent) / MEBIBYTE),
            "answers during attack": answered is not None,
            "closed by the victim": closed,
            "rss while held MiB": round(rss_held / MEBIBYTE, 1),
            "connections over budget": total["connections_over_budget"],
            "forged delivered": total["messages_received"] - 2,  # the echo and stats requests
            "prober options": options}


ATTACKS = {
    "quic spoofed initials 6000": (_victim(True), _attack(6000, False)),
    "quic spoofed initials 10000": (_victim(True), _attack(10_000, False)),
    "quic abandoned handshakes 6000": (_victim(True), _attack(6000, True)),
    "quic abandoned handshakes 10000": (_victim(True), _attack(10_000, True)),
    "quic initials retry off 6000": (_victim(False), _attack(6000, False)),
    "quic initials retry off 10000": (_victim(False), _attack(10_000, False)),
    # Idle for longer than the attack: a parked connection must be closed by the budget alone.
    "quic partial packets": (_victim(True, idle_timeout=600), partial_packets),
}
