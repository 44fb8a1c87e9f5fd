"""The rows of a growth bench: the worker processes of each, or why it cannot run.

A row names its servers (started first, each printing where it listens) and
its clients (started at the servers' addresses). Counts are chosen so that
every row moves a bounded volume and keeps a bounded window in flight.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from relay_core.errors import RelayError
from relay_core.plugins.registry import PluginRegistry

from .._cases import _relay_setups, _RelaySetup
from .._workers._payloads import TRAINING_FIRST, pool
from ._settings import GrowthSettings

__all__ = ["GrowthCase", "growth_cases"]

KIB, MIB = 1024, 1024 * 1024
SENDER_PROCESSES = 4
"""Processes the sender nodes of a peers row are spread over (fewer for fewer peers)."""
IDLE_PER_PROCESS = 250
"""Idle nodes per process in a memory row."""
WINDOW_MESSAGES = 4000
"""Messages in flight at once over all sender nodes of a row: well within the sink's
mailbox, yet enough that 100 senders still send 40 messages per count request."""
WINDOW_BYTES = MIB
"""Payload bytes in flight at once per sender node (at least one message)."""
MIN_MESSAGES = 3
SIZES = (64, KIB, 8 * KIB, 60 * KIB)
STREAM_SIZES = (MIB, 10 * MIB)
"""Sizes only stream transports carry: more than one datagram holds."""
PAYLOADS = (("event", 160, "~160 B event"), ("records", 4 * KIB, "~4 KiB log lines"),
            ("random", 4 * KIB, "4 KiB random bytes"))
"""Compression rows: (payload kind, about how many bytes encoded, label)."""
DICTIONARY_SIZE = 8 * KIB
TRAINING_SAMPLES = 1000


@dataclass(frozen=True, slots=True)
class GrowthCase:
    """One row: the worker arguments of its servers and its clients, or why it cannot run."""

    table: str
    label: str
    servers: tuple[tuple[str, ...], ...] = ()
    clients: tuple[tuple[str, ...], ...] = ()
    """Every client gets ``--target`` with the servers' ready addresses, joined by commas."""
    facts: Mapping[str, float] = field(default_factory=dict)
    """Figures the row fixes (peers, processes, size), shown beside the measured ones."""
    group: str = ""
    """Rows compared with the first row of their group (compression: one payload)."""
    skipped: str = ""


def growth_cases(settings: GrowthSettings, workdir: Path) -> list[GrowthCase]:
    """Every row, table by table; quic's certificate and the dictionaries go to ``workdir``."""
    setups = _relay_setups(settings.bench, workdir)
    return [*_peer_rows(settings, setups), *_memory_rows(settings, setups),
            *_size_rows(settings, setups), *_compression_rows(settings, setups, workdir)]


def _shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` whole numbers that differ by at most one."""
    return [total // parts + (index < total % parts) for index in range(parts)]


def _window(nodes: int, size: int) -> str:
    return str(max(1, min(WINDOW_MESSAGES // nodes, WINDOW_BYTES // size)))


def _peer_rows(settings: GrowthSettings, setups: Sequence[_RelaySetup]) -> list[GrowthCase]:
    rows = []
    for setup, peers in ((setup, peers) for setup in setups for peers in settings.peers):
        each = max(1, settings.bench.messages // peers)
        source = ("growth-source", *setup.arguments, "--payload", "event", "--messages",
                  str(each), "--window", _window(peers, 160))
        shares = _shares(peers, min(peers, SENDER_PROCESSES))
        rows.append(GrowthCase(
            "peers", f"{setup.transport} {peers} peer{'s' * (peers > 1)}",
            (("growth-sink", *setup.arguments),),
            tuple((*source, "--nodes", str(nodes)) for nodes in shares),
            {"peers": peers, "processes": len(shares)}, skipped=setup.skipped))
    return rows


def _memory_rows(settings: GrowthSettings, setups: Sequence[_RelaySetup]) -> list[GrowthCase]:
    peers = settings.idle_peers
    groups = _shares(peers, -(-peers // IDLE_PER_PROCESS))
    return [
        GrowthCase("memory", f"{setup.transport} {peers} idle peers, {method}",
                   tuple(("growth-idle", *setup.arguments, "--nodes", str(n)) for n in groups),
                   (("growth-hub", *setup.arguments, "--memory", method),),
                   {"peers": peers}, skipped=setup.skipped)
        for setup in setups for method in ("rss", "tracemalloc")
    ]


def _size_rows(settings: GrowthSettings, setups: Sequence[_RelaySetup]) -> list[GrowthCase]:
    rows = []
    for setup in setups:
        for size in (*SIZES, *(STREAM_SIZES if _is_stream(setup.transport) else ())):
            count = _count(settings, size)
            rows.append(GrowthCase(
                "sizes", f"{setup.transport} {_size_text(size)}",
                (("growth-sink", *setup.arguments),),
                (("growth-source", *setup.arguments, "--payload", "bytes", "--size", str(size),
                  "--messages", str(count), "--window", _window(1, size)),),
                {"size": size}, skipped=setup.skipped))
    return rows


def _count(settings: GrowthSettings, size: int) -> int:
    """Messages a row sends: ``--messages``, fewer where they would pass ``--volume``."""
    return max(MIN_MESSAGES, min(settings.bench.messages, settings.volume * 1_000_000 // size))


def _is_stream(scheme: str) -> bool:
    try:
        return PluginRegistry.load().transport_class(scheme).reliable
    except RelayError:
        return False  # its rows are skipped anyway, saying why


def _size_text(size: int) -> str:
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if size >= unit:
            return f"{size / unit:g} {name}"
    return f"{size} B"


def _compression_rows(settings: GrowthSettings, setups: Sequence[_RelaySetup],
                      workdir: Path) -> list[GrowthCase]:
    """Every payload without compression, with zstd, and with zstd and a trained dictionary.

    One transport suffices (udp, where it runs): compression happens before any transport.
    """
    running = [setup for setup in setups if not setup.skipped] or list(setups)
    setup = next((s for s in running if s.transport == "udp"), running[0] if running else None)
    if setup is None:
        return []
    rows = []
    for kind, size, text in PAYLOADS:
        dictionary, problem = _train(kind, size, settings.codec, workdir)
        common = ("growth-source", *setup.arguments, "--payload", kind, "--size", str(size),
                  "--messages", str(_count(settings, size)), "--window", _window(1, size))
        sink = ("growth-sink", *setup.arguments, *dictionary)
        for label, compressor in (("none", ()), ("zstd", ("--compressor", "zstd")),
                                  ("zstd + dictionary", ("--compressor", "zstd", *dictionary))):
            skipped = setup.skipped or (problem if "zstd" in label else "")
            rows.append(GrowthCase("compression", f"{setup.transport} {text}, {label}",
                                   (sink,), ((*common, *compressor),), group=kind,
                                   skipped=skipped))
    return rows


def _train(kind: str, size: int, codec: str, workdir: Path) -> tuple[tuple[str, ...], str]:
    """Worker arguments naming a dictionary trained on ``kind`` samples, or why there is none."""
    path = workdir / f"zstd-{kind}.dict"
    try:
        encode = PluginRegistry.load().codec(codec).encode
        samples = [encode(sample) for sample in pool(kind, size, TRAINING_SAMPLES, TRAINING_FIRST)]
        # relay_core does not depend on relay_codecs; the bench only borrows its trainer.
        zstd = importlib.import_module("relay_codecs._zstd")
        path.write_bytes(zstd.train_dictionary(samples, DICTIONARY_SIZE))
    except (ImportError, AttributeError, OSError, RelayError) as exc:
        return (), f"no zstd dictionary: {type(exc).__name__}: {exc}"
    return ("--dictionary", str(path)), ""
