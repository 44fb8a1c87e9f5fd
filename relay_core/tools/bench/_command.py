"""The bench from start to end: every row, run after run, then the report."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from relay_core._compiled import build_description
from relay_core.runtime.loop import loop_name

from ._cases import Case, cases
from ._growth import growth_settings_from_args, run_growth_command
from ._report import BenchReport, render_json, render_table, summarize
from ._runner import Measurement, Runner
from ._scenarios import SCENARIOS
from ._settings import PIN, BenchSettings, settings_from_args

__all__ = ["run_bench", "run_command"]


async def run_bench(
    settings: BenchSettings, progress: Callable[[str], None] = lambda line: None
) -> BenchReport:
    """Run every row ``settings.runs`` times and return the report.

    Runs interleave (run 1 of every row, then run 2 of every row...), so load
    that drifts during the bench touches every row alike.
    """
    environment = _environment(settings)
    with tempfile.TemporaryDirectory(prefix="net-relay-bench-") as workdir:
        rows = cases(settings, Path(workdir))
        runner = Runner(Path(workdir), PIN if settings.pin else (), settings.time_limit)
        measured: list[list[Measurement]] = [[] for _ in rows]
        for run in range(1, settings.runs + 1):
            for case, runs in zip(rows, measured):
                if case.skipped:
                    continue
                progress(f"run {run}/{settings.runs}  {case.scenario:<8}  {case.label}")
                runs.append(await runner.measure(case))
                progress(f"    {_headline(case, runs[-1])}")
    environment["load_after"] = list(os.getloadavg())
    return BenchReport(settings, summarize(rows, measured, settings.pin), environment)


async def run_command(args: argparse.Namespace) -> int:
    """``net-relay bench``: progress on stderr, the table (or JSON) on stdout.

    Exit status 1 when some row that should have run has no successful run.
    """
    growth = growth_settings_from_args(args)
    if growth is not None:
        return await run_growth_command(growth, args.json)
    settings = settings_from_args(args)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = await run_bench(settings, progress)
    print(render_json(report) if args.json else render_table(report))
    return 1 if report.failed else 0


def _headline(case: Case, measurement: Measurement) -> str:
    if measurement.failure:
        return measurement.failure
    scenario = SCENARIOS[case.scenario]
    return f"{measurement.metrics[scenario.headline]:,.0f} {scenario.unit}"


def _environment(settings: BenchSettings) -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pinned_to_cpu0": settings.pin,
        "loop": loop_name(settings.loop),
        "net_relay": _version("net-relay"),
        "net_relay_build": build_description(),
        "pyzmq": _version("pyzmq"),
        "load_before": list(os.getloadavg()),
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
