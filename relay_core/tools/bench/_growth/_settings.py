"""What a growth bench runs: :class:`GrowthSettings`, built from the bench's command line.

The growth bench shares the comparison's options where they mean the same
(``--messages``, ``--runs``, ``--transports``, ``--codecs``, ``--pin``,
``--time-limit``, ``--quick``); an option of only one of the two is refused
with the other, so that no option is silently ignored.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from relay_core.errors import ConfigError

from .._settings import BenchSettings, settings_from_args

__all__ = ["MAX_PEERS", "GrowthSettings", "growth_settings_from_args"]

MAX_PEERS = 1000
"""Bound on sender peers and idle peers: each is a node with its own socket, and a
node's peer statistics keep 1024 entries before peers share one."""
GROWTH_ONLY = ("peers", "idle_peers", "volume")
COMPARISON_ONLY = ("rpcs", "inflight", "inflight_rpcs", "baselines")
QUICK = {"idle_peers": 100, "volume": 20}


@dataclass(frozen=True, slots=True)
class GrowthSettings:
    """What a growth bench runs. Invalid values raise ConfigError at once."""

    bench: BenchSettings
    """Shared with the comparison: messages, runs, transports, codec, pinning, time limit."""
    peers: tuple[int, ...] = (1, 10, 100)
    idle_peers: int = 1000
    volume: int = 200
    """Megabytes of payload a size or compression row moves at most."""

    def __post_init__(self) -> None:
        if len(self.bench.codecs) != 1:
            raise ConfigError(f"--codecs {','.join(self.bench.codecs)!r} is not allowed with "
                              "--growth: name one codec")
        for value in self.peers:
            _check("--peers", value, 1, MAX_PEERS)
        _check("--idle-peers", self.idle_peers, 2, MAX_PEERS)
        _check("--volume", self.volume, 1, None)

    @property
    def codec(self) -> str:
        return self.bench.codecs[0]


def _check(flag: str, value: object, low: int, high: int | None) -> None:
    if (isinstance(value, bool) or not isinstance(value, int) or value < low
            or (high is not None and value > high)):
        allowed = f"from {low} to {high}" if high is not None else f">= {low}"
        raise ConfigError(f"{flag} {value!r} is not allowed: a whole number {allowed}")


def growth_settings_from_args(args: argparse.Namespace) -> GrowthSettings | None:
    """The growth settings asked for; None without --growth, where no growth option may be given."""
    given = [name for name in GROWTH_ONLY if getattr(args, name) is not None]
    if not args.growth:
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} needs --growth")
        return None
    clash = [name for name in COMPARISON_ONLY if getattr(args, name) is not None]
    if clash:
        raise ConfigError(f"--{clash[0].replace('_', '-')} is not an option of --growth")
    options: dict[str, Any] = dict(QUICK) if args.quick else {}
    options |= {name: getattr(args, name) for name in given}
    if "peers" in options:
        options["peers"] = _counts(options["peers"])
    return GrowthSettings(settings_from_args(args), **options)


def _counts(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--peers {text!r}: expected whole numbers separated by commas, "
                          "e.g. 1,10,100") from None
