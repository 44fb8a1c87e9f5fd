"""Two hosts: nodes in two network namespaces joined by a veth pair.

The test makes its own namespaces and link, uses only the addresses it gives
them, and removes everything afterwards. It needs root and iproute2; where
they are missing it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.privileged, pytest.mark.slow]

HOST_A, HOST_B = "10.213.77.1", "10.213.77.2"
PORT = 9700
LIMIT = 20.0


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=LIMIT, check=False)


def _why_not() -> str | None:
    if not sys.platform.startswith("linux"):
        return "network namespaces are a Linux feature"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    probe = f"nr-probe-{os.getpid()}"
    made = _run("ip", "netns", "add", probe)
    if made.returncode != 0:
        return f"'ip netns add' is not allowed here: {made.stderr.strip()}"
    _run("ip", "netns", "del", probe)
    return None


@dataclass(frozen=True)
class Hosts:
    a: str
    b: str


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    tag = os.getpid() % 100_000
    names = Hosts(f"nr-a-{tag}", f"nr-b-{tag}")
    veth_a, veth_b = f"nra{tag}", f"nrb{tag}"
    try:
        for namespace in (names.a, names.b):
            _check(_run("ip", "netns", "add", namespace))
        _check(_run("ip", "link", "add", veth_a, "type", "veth", "peer", "name", veth_b))
        for veth, namespace, address in ((veth_a, names.a, HOST_A), (veth_b, names.b, HOST_B)):
            _check(_run("ip", "link", "set", veth, "netns", namespace))
            _check(_run("ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", veth))
            _check(_run("ip", "-n", namespace, "link", "set", veth, "up"))
            _check(_run("ip", "-n", namespace, "link", "set", "lo", "up"))
        yield names
    finally:
        for namespace in (names.a, names.b):
            _run("ip", "netns", "del", namespace)  # takes its end of the veth pair with it


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(result.args)} failed: {result.stderr.strip()}")


def _cli(namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _run("ip", "netns", "exec", namespace, sys.executable, "-m", "relay_core.tools.cli", *args)


def test_nodes_on_two_hosts_exchange_messages_and_rpcs(hosts: Hosts, tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    config.write_text(f'[node]\nname = "host-a"\n\n[listen.udp]\nhost = "{HOST_A}"\n'
                      f"port = {PORT}\n\n[listen.tcp]\nhost = \"{HOST_A}\"\nport = {PORT}\n")
    node = subprocess.Popen(
        ["ip", "netns", "exec", hosts.a, sys.executable, "-m", "relay_core.tools.cli", "node",
         "--config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        assert "listening on udp://" in node.stdout.readline()
        for scheme in ("udp", "tcp"):
            reply = _cli(hosts.b, "rpc", f"{scheme}://{HOST_A}:{PORT}/echo", '{"from": "b"}')
            assert reply.returncode == 0, reply.stderr
            assert json.loads(reply.stdout) == {"from": "b"}
        for index in range(5):
            sent = _cli(hosts.b, "send", f"udp://{HOST_A}:{PORT}/counter", str(index))
            assert sent.returncode == 0, sent.stderr
        deadline = time.monotonic() + LIMIT
        count = 0
        while count < 5 and time.monotonic() < deadline:
            count = json.loads(_cli(hosts.b, "rpc", f"udp://{HOST_A}:{PORT}/counter", "0").stdout)
        assert count == 5
    finally:
        node.send_signal(signal.SIGTERM)
        _, stderr = node.communicate(timeout=LIMIT)
    assert node.returncode == 0, stderr
