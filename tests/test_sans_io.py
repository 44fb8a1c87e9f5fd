"""The sans-IO modules import no I/O, clock or concurrency machinery.

Wire format, coalescing, duplicate window, message types and codecs take bytes
and return bytes or values; keeping socket, asyncio, time, threading and
selectors out of them keeps them testable without a network or a loop. Checked
on the source (AST), so a module need not even import cleanly to be judged.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = frozenset({"socket", "asyncio", "time", "threading", "selectors"})
SANS_IO = sorted(
    [
        *(ROOT / "relay_core" / name for name in (
            "_wire.py", "_coalesce.py", "_window.py", "_seal.py", "_framing.py", "_replycache.py",
            "_heph.py", "_handshake.py",
        )),
        ROOT / "relay_core" / "_messages.py",
        *(ROOT / "relay_codecs").glob("*.py"),
    ]
)


def forbidden_imports(source: str) -> list[str]:
    """Every top-level module in FORBIDDEN that ``source`` imports, anywhere in it."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [name for name in names if name.partition(".")[0] in FORBIDDEN]
    return found


@pytest.mark.parametrize("path", SANS_IO, ids=lambda path: str(path.relative_to(ROOT)))
def test_sans_io_module_imports_no_io(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not written yet")
    assert forbidden_imports(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "import os, asyncio",
        "import asyncio.events as events",
        "from time import monotonic",
        "from selectors import DefaultSelector",
        "def later():\n    import threading",
        "try:\n    import socket\nexcept ImportError:\n    pass",
    ],
)
def test_the_check_finds_io_imports_in_any_form(source: str) -> None:
    assert forbidden_imports(source)


@pytest.mark.parametrize(
    "source",
    ["import struct", "from . import time", "from .asyncio import x", "import timeit", "x = 1"],
)
def test_the_check_leaves_other_imports_alone(source: str) -> None:
    assert forbidden_imports(source) == []
