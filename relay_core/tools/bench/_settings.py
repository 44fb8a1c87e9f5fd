"""What a bench runs: :class:`BenchSettings`, and the command-line options that build it."""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from typing import Any

from relay_core.errors import ConfigError
from relay_core.runtime.loop import choose

__all__ = ["BASELINES", "PIN", "BenchSettings", "add_arguments", "settings_from_args"]

BASELINES = ("raw", "pyzmq")
PIN = ("taskset", "-c", "0")
QUICK = {"messages": 2_000, "rpcs": 200, "inflight_rpcs": 2_000, "runs": 1}
"""Counts --quick uses unless given explicitly: seconds per row, for smoke tests."""
MAX_INFLIGHT = 10_000
"""The echo actor's mailbox size: more requests in flight would be refused as overloaded."""
WARMUP = 100
"""Round trips a caller makes before it starts measuring (fewer if --rpcs is smaller)."""


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """Counts, rows and limits of one bench. Invalid values raise ConfigError at once."""

    messages: int = 200_000
    rpcs: int = 5_000
    inflight: int = 100
    inflight_rpcs: int = 50_000
    runs: int = 3
    transports: tuple[str, ...] | None = None
    """None: every installed transport."""
    codecs: tuple[str, ...] = ("msgpack",)
    baselines: tuple[str, ...] = BASELINES
    pin: bool = False
    """Run every child under ``taskset -c 0`` (one CPU: no cross-CPU wake-ups)."""
    time_limit: float = 120.0
    """Seconds one run of one row may take before its children are killed."""
    loop: str | None = None
    """The event loop of the net-relay rows: auto, asyncio or uvloop; None: as
    ``relay_core.run`` chooses (``NET_RELAY_LOOP``, else auto). Raw rows keep the stock loop."""

    def __post_init__(self) -> None:
        choose(self.loop)  # a bad loop, or uvloop where it is missing, fails here, not in a worker
        for name in ("messages", "rpcs", "inflight", "inflight_rpcs", "runs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{_flag(name)} {value!r} is not allowed: a whole number >= 1")
        if self.inflight > MAX_INFLIGHT:
            raise ConfigError(f"--inflight {self.inflight} is not allowed: at most "
                              f"{MAX_INFLIGHT} (the echo actor's mailbox size)")
        if not self.time_limit > 0:
            raise ConfigError(f"--time-limit {self.time_limit!r} is not allowed: seconds > 0")
        unknown = sorted(set(self.baselines) - set(BASELINES))
        if unknown:
            raise ConfigError(f"--baselines: unknown {', '.join(unknown)}; "
                              f"choose from {', '.join(BASELINES)}")
        if self.pin and shutil.which(PIN[0]) is None:
            raise ConfigError("--pin needs the taskset command (util-linux), "
                              "which is not on PATH; install it or run without --pin")

    @property
    def warmup(self) -> int:
        return min(WARMUP, self.rpcs)

    @property
    def relay_loop(self) -> str:
        """The loop the net-relay workers run on: ``uvloop`` or ``asyncio``."""
        return choose(self.loop)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _names(text: str, flag: str) -> tuple[str, ...]:
    """Comma-separated names; an empty text means none."""
    if not text.strip():
        return ()
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise ConfigError(f"{flag} {text!r}: expected names separated by commas, e.g. udp,tcp")
    return names


def settings_from_args(args: argparse.Namespace) -> BenchSettings:
    """The settings the bench command line asked for; --quick only changes defaults."""
    given: dict[str, Any] = dict(QUICK) if args.quick else {}
    for name in ("messages", "rpcs", "inflight", "inflight_rpcs", "runs", "time_limit"):
        if getattr(args, name) is not None:
            given[name] = getattr(args, name)
    for name in ("transports", "codecs", "baselines"):
        if getattr(args, name) is not None:
            given[name] = _names(getattr(args, name), _flag(name))
    return BenchSettings(pin=args.pin, loop=getattr(args, "loop", None), **given)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``net-relay bench`` (and of benchmarks/run_bench.py)."""
    for flag, text in (
        ("--messages", "one-way messages per run (200000)"),
        ("--rpcs", "sequential round trips per run (5000)"),
        ("--inflight", "requests kept in flight (100)"),
        ("--inflight-rpcs", "requests per in-flight run (50000)"),
        ("--runs", "runs per row; the median is reported (3)"),
    ):
        parser.add_argument(flag, type=int, metavar="N", help=text)
    parser.add_argument("--transports", metavar="NAMES", help="e.g. udp,tcp,quic (every installed transport)")
    parser.add_argument("--codecs", metavar="NAMES", help="e.g. msgpack,cbor,json (msgpack)")
    parser.add_argument("--baselines", metavar="NAMES", help="raw,pyzmq or fewer; '' for none (both)")
    parser.add_argument("--pin", action="store_true", help="run every process on CPU 0")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="tiny counts, one run")
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help="seconds per run of a row before it is killed (120)")
    parser.add_argument("--growth", action="store_true",
                        help="run the growth tables (peers, memory, sizes, compression) instead")
    parser.add_argument("--peers", metavar="COUNTS", help="--growth: sender peers (1,10,100)")
    parser.add_argument("--idle-peers", type=int, metavar="N",
                        help="--growth: peers of the memory rows (1000)")
    parser.add_argument("--volume", type=int, metavar="MB",
                        help="--growth: payload a size or compression row moves at most (200)")
