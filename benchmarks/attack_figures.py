"""What each attack on the hostile-network list does to a live node: memory, CPU, answers.

Run ``python benchmarks/attack_figures.py [--attacks NAME,...] [--scale X]``
(``--list`` names them). Each attack runs against a fresh victim node in its
own process (``benchmarks/attacks/_victim.py``) and prints one row: the
victim's resident memory before and after, the CPU seconds it spent, how long
its echo took to answer a fresh caller right after the attack (the promise:
within 1 s), and the attack's own figures (what it sent, what was delivered,
dropped and counted; ``forged delivered`` and ``replayed twice`` must be 0).
The attacks live in ``benchmarks/attacks/``, one module per area. Bounded:
every attack caps its counts, and each gives up after ``--limit`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import pkgutil
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attacks._victim import Victim

from relay_core import run as run_on_chosen_loop

Attack = Callable[[Victim, float], Awaitable[dict[str, object]]]
ANSWER_LIMIT = 1.0  # seconds: the node must answer a fresh caller within this after an attack
MEBIBYTE = 1024 * 1024


def attacks() -> dict[str, tuple[str, Attack]]:
    """Every attack, by name, with the victim config (TOML) it needs."""
    import attacks as package

    found: dict[str, tuple[str, Attack]] = {}
    for module in pkgutil.iter_modules(package.__path__):
        if module.name.startswith("_"):
            continue
        loaded = importlib.import_module(f"attacks.{module.name}")
        for name, (config, attack) in loaded.ATTACKS.items():
            found[name] = (config, attack)
    return found


async def measure(name: str, config: str, attack: Attack, scale: float,
                  limit: float) -> dict[str, object]:
    listeners = tuple(line.split(".", 1)[1].rstrip("]").strip()
                      for line in config.splitlines() if line.startswith("[listen."))
    async with Victim(config, listeners or ("udp",)) as victim:
        scheme = listeners[0] if listeners else "udp"
        rss_before, cpu_before = victim.rss(), victim.cpu_seconds()
        started = time.perf_counter()
        async with asyncio.timeout(limit):
            figures = await attack(victim, scale)
        seconds = time.perf_counter() - started
        answered = await victim.answers_within(ANSWER_LIMIT, scheme,
                                               figures.pop("prober options", None))  # type: ignore[arg-type]
        rss_after, cpu_after = victim.rss(), victim.cpu_seconds()
    return {"attack": name, "seconds": round(seconds, 2),
            "rss before MiB": round(rss_before / MEBIBYTE, 1),
            "rss after MiB": round(rss_after / MEBIBYTE, 1),
            "rss growth MiB": round((rss_after - rss_before) / MEBIBYTE, 1),
            "victim cpu s": round(cpu_after - cpu_before, 2),
            f"answers within {ANSWER_LIMIT:g} s": answered is not None,
            **figures}


def _print(row: Mapping[str, object]) -> None:
    print(f"{row['attack']}:")
    for label, value in row.items():
        if label != "attack":
            print(f"  {label:<34} {value}")


def _names(known: Mapping[str, object]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in known]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"unknown attack {', '.join(unknown) or '(none)'}; known: {', '.join(known)}")
        return chosen

    return parse


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.001 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a scale from 0.001 to 10")
    return value


def main() -> int:
    known = attacks()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacks", type=_names(known), default=list(known),
                        help="comma-separated attack names (default: all)")
    parser.add_argument("--scale", type=_scale, default=1.0,
                        help="each attack's size, as a multiple of its default (default 1)")
    parser.add_argument("--limit", type=float, default=300.0,
                        help="give up on one attack after this many seconds (default 300)")
    parser.add_argument("--list", action="store_true", help="name every attack and stop")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    args = parser.parse_args()
    if args.list:
        print("\n".join(known))
        return 0
    logging.getLogger("relay_core").setLevel(logging.ERROR)
    logging.getLogger("relay_transports").setLevel(logging.ERROR)

    async def run_all() -> list[dict[str, object]]:
        rows = []
        for name in args.attacks:
            config, attack = known[name]
            print(f"... {name}", file=sys.stderr, flush=True)
            row = await measure(name, config, attack, args.scale, args.limit)
            _print(row)
            rows.append(row)
        return rows

    rows = run_on_chosen_loop(run_all())
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
