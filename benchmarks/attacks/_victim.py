"""The node under attack: ``net-relay node`` in its own process, measured from outside."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from relay_core import Node, NodeConfig, PeerConfig, RelayError
from relay_transports._certs import generate_self_signed

_TICKS = os.sysconf("SC_CLK_TCK")

UDP_VICTIM = """
[node]
name = "victim"

[listen.udp]
host = "127.0.0.1"
port = 0
"""
"""The plain victim: a node listening on udp alone, with the demo actors."""
_START_LIMIT = 30.0


class Victim:
    """A node process with the demo actors ``echo``, ``counter`` and ``sink``, from ``config`` (TOML).

    ``address(scheme)`` is where it listens; ``rss()`` and ``cpu_seconds()`` read its
    process from /proc; ``answers_within(seconds)`` asks its echo from a fresh node.
    Its ``directory`` holds a development certificate, ``cert.pem`` with ``key.pem``
    (for localhost, 127.0.0.1 and ::1), that a TLS listener in ``config`` may name; a
    prober trusts it with ``{"ca": str(victim.directory / "cert.pem")}``.
    """

    def __init__(self, config: str, listeners: tuple[str, ...] = ("udp",)) -> None:
        self._config = config
        self._listeners = listeners
        self._process: asyncio.subprocess.Process | None = None
        self._cpu_of_earlier_processes = 0.0
        self._directory = tempfile.TemporaryDirectory(prefix="net-relay-victim-")
        self.addresses: dict[str, str] = {}

    @property
    def directory(self) -> Path:
        return Path(self._directory.name)

    async def __aenter__(self) -> Self:
        generate_self_signed(self.directory / "cert.pem", self.directory / "key.pem")
        await self._start(self._config)
        return self

    async def restart(self) -> None:
        """Kill the node and start it again, on the udp port it had bound: the same node
        to its peers, with a new incarnation and nothing remembered."""
        port = self.address("udp").rsplit(":", 1)[1]
        config = re.sub(r"(\[listen\.udp\][^\[]*?port = )0\b", rf"\g<1>{port}", self._config)
        assert self._process is not None
        self._cpu_of_earlier_processes = self.cpu_seconds()
        self._process.kill()
        await self._process.wait()
        self.addresses.clear()
        await self._start(config)

    async def _start(self, config: str) -> None:
        path = self.directory / "victim.toml"
        path.write_text(config)
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "relay_core.tools.cli", "node", "--config", str(path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert self._process.stdout is not None
        async with asyncio.timeout(_START_LIMIT):
            while len(self.addresses) < len(self._listeners):
                line = (await self._process.stdout.readline()).decode()
                if not line:
                    raise RelayError("the victim node exited before it listened")
                if " listening on " in line:
                    url = line.rsplit(" ", 1)[1].strip()
                    self.addresses[url.split("://", 1)[0]] = url

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        self._directory.cleanup()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def address(self, scheme: str = "udp") -> str:
        return self.addresses[scheme]

    def rss(self) -> int:
        """Resident memory of the victim process, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        """User and system CPU time the victim process has used (with the processes it
        ran as before a restart)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return self._cpu_of_earlier_processes + (int(fields[11]) + int(fields[12])) / _TICKS

    async def answers_within(self, seconds: float, scheme: str = "udp",
                             options: dict[str, object] | None = None) -> float | None:
        """Seconds an RPC to the victim's echo took from a fresh node, or None past ``seconds``."""
        peer = PeerConfig(address=self.address(scheme), options=options or {})
        config = NodeConfig(name="prober", listen={}, peers={"victim": peer})
        async with Node(config) as prober:
            started = time.perf_counter()
            try:
                await prober.ref("victim/echo").rpc("still there?", timeout=seconds)
            except RelayError:
                return None
            return time.perf_counter() - started

    async def stats(self, scheme: str = "udp",
                    options: dict[str, object] | None = None) -> dict[str, object]:
        """The victim's counters, through its ``$stats`` actor (``options``: the prober's
        peer options, a ``ca`` for TLS)."""
        peer = PeerConfig(address=self.address(scheme), options=options or {})
        config = NodeConfig(name="prober", listen={}, peers={"victim": peer})
        async with Node(config) as prober:
            reply = await prober.ref("victim/$stats").rpc(None, timeout=10.0)
        assert isinstance(reply, dict)
        return reply
