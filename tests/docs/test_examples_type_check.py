"""The examples a user copies are strictly typed: replies and requests need no casts or ignores.

mypy --strict runs over examples/ping_pong and over every README and docs block
meant to run (the API tour among them), as a user's own type checker would.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from pathlib import Path

from markdown_blocks import ROOT, blocks_in
from test_code_blocks import RUN_LIMIT_SECONDS, RUNNABLE_DOCUMENTS, run_python_file

PING_PONG = ROOT / "examples" / "ping_pong"
MYPY_LIMIT_SECONDS = 600.0


def test_the_examples_and_the_runnable_doc_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    files = sorted(str(path) for path in PING_PONG.glob("*.py"))
    for block in blocks_in("python", documents=RUNNABLE_DOCUMENTS):
        if block.fragment is None:
            module = re.sub(r"\W", "_", block.name)
            (tmp_path / f"{module}.py").write_text(block.text, encoding="utf-8")
            files.append(str(tmp_path / f"{module}.py"))
    assert any("README" in name for name in files), "the README tour is among them"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(ROOT / ".mypy_cache"), *files],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
        timeout=MYPY_LIMIT_SECONDS, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_examples_need_no_type_ignore() -> None:
    ignored = [f"{path.name}:{number}" for path in PING_PONG.glob("*.py")
               for number, line in enumerate(path.read_text().splitlines(), 1)
               if "type: ignore" in line]
    assert ignored == []


def test_ping_and_pong_talk_as_their_readme_says(tmp_path: Path) -> None:
    beta = tmp_path / "beta.toml"
    beta.write_text('[node]\nname = "beta"\n\n[listen.udp]\nhost = "127.0.0.1"\nport = 0\n')
    with subprocess.Popen([sys.executable, str(PING_PONG / "pong.py"), str(beta)],
                          cwd=tmp_path, env=dict(os.environ), stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) as pong:
        try:
            assert pong.stdout is not None
            ready, _, _ = select.select([pong.stdout], [], [], RUN_LIMIT_SECONDS)
            assert ready, "pong.py did not say where it waits"
            waiting = pong.stdout.readline()  # "pong is waiting on udp://127.0.0.1:PORT/pong"
            port = re.search(r"udp://127\.0\.0\.1:(\d+)/pong", waiting)
            assert port, waiting
            alpha = tmp_path / "alpha.toml"
            alpha.write_text('[node]\nname = "alpha"\n\n[peers.beta]\n'
                             f'address = "udp://127.0.0.1:{port[1]}"\ncodec = "cbor"\n')
            done = run_python_file(PING_PONG / "ping.py", tmp_path, "3", str(alpha))
        finally:
            pong.terminate()
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split(" in ")[0] for line in done.stdout.splitlines()] == [
        "ping 1: pong 1", "ping 2: pong 2", "ping 3: pong 3"]
