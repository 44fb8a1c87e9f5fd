"""A running Heph test peer (heph_peer/, built by conftest.py), driven by JSON lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ANSWER_LIMIT = 60.0
"""Seconds the peer may take to stop (it waits at most 30 s for a datagram)."""


class RustPeer:
    """One running peer process: a UDP socket on 127.0.0.1, driven by JSON commands."""

    def __init__(self, binary: Path, *arguments: str) -> None:
        self._process = subprocess.Popen([str(binary), *arguments], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        self.port = int(self.command({"op": "port"})["port"])
        self.address = f"127.0.0.1:{self.port}"

    def command(self, command: dict[str, object]) -> dict[str, object]:
        """Send one command and return the peer's answer (blocking: call it in a thread
        while a node runs)."""
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise AssertionError(f"the Rust peer exited ({self._process.poll()}) on {command}")
        answer = json.loads(line)
        assert isinstance(answer, dict)
        return answer

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=ANSWER_LIMIT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
