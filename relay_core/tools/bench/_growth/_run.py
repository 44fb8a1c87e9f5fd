"""Running the growth bench: the worker processes of one run, and every run of every row.

A run starts its servers, then its clients at the servers' addresses; once
every client is ready, one line tells them all to go. Runs interleave (run 1
of every row, then run 2...), so load that drifts touches every row alike.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from relay_core.runtime.loop import loop_name

from .._runner import Measurement, Runner, _Start
from .._scenarios import Result, RunFailed
from .._settings import PIN
from ._cases import GrowthCase, growth_cases
from ._report import (
    TABLES,
    GrowthReport,
    compared,
    render_growth_json,
    render_growth_table,
    summary,
)
from ._settings import GrowthSettings

__all__ = ["run_growth", "run_growth_command"]


async def _session(case: GrowthCase, start: _Start) -> tuple[list[Result], list[Result]]:
    """Start the servers, then the clients at their addresses; once every client is
    ready, tell them all to go (the line that stops a server); return both results."""
    servers = [await start(arguments) for arguments in case.servers]
    target = ",".join([str((await server.result())["ready"]) for server in servers])
    clients = [await start((*arguments, "--target", target)) for arguments in case.clients]
    for client in clients:
        await client.result()
    await asyncio.gather(*(client.stop() for client in clients))
    client_results = [await client.result() for client in clients]
    await asyncio.gather(*(server.stop() for server in servers))
    return [await server.result() for server in servers], client_results


async def _measure(runner: Runner, case: GrowthCase) -> Measurement:
    # The runner's own measure() runs one server and one client; a growth row runs more.
    try:
        async with runner._children() as start, asyncio.timeout(runner.time_limit):
            servers, clients = await _session(case, start)
        return Measurement(_COMBINE[case.table](servers, clients))
    except TimeoutError:
        return Measurement(failure="timeout")
    except RunFailed as exc:
        return Measurement(failure=f"failed: {exc}")
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        return Measurement(failure=f"failed: unexpected worker result: {exc!r}")


def _one_way(servers: Sequence[Result], clients: Sequence[Result]) -> dict[str, float]:
    sink, sent = servers[0], sum(client["sent"] for client in clients)
    received, window = sink["received"], sink["window"]
    if received < 2 or not window > 0:
        raise RunFailed(f"{received} of {sent} messages arrived: too few to time")
    rate = (received - 1) / window  # messages after the first, over the time they took
    payload = sum(client["payload_bytes"] for client in clients) / sent
    return {"sent": sent, "received": received, "received_per_s": rate,
            "mb_per_s": rate * payload / 1e6, "loss_pct": 100 * (sent - received) / sent,
            "payload_bytes_per_msg": payload,
            "wire_bytes_per_msg": sum(client["wire_bytes"] for client in clients) / sent,
            "stalls": sum(client["stalls"] for client in clients),
            **{key: sink[key] for key in ("mailbox_full", "undecodable", "unsupported_codec")}}


def _memory(servers: Sequence[Result], clients: Sequence[Result]) -> dict[str, float]:
    hub = clients[0]
    return {key: hub[key] for key in ("lost", "config_per_peer", "state_per_peer", "per_peer")}


_COMBINE: Mapping[str, Callable[[Sequence[Result], Sequence[Result]], dict[str, float]]] = {
    "peers": _one_way, "memory": _memory, "sizes": _one_way, "compression": _one_way,
}


async def run_growth(
    settings: GrowthSettings, progress: Callable[[str], None] = lambda line: None
) -> GrowthReport:
    """Run every row ``runs`` times, interleaved as in the comparison bench; return the report."""
    environment = _environment(settings)
    runs = settings.bench.runs
    with tempfile.TemporaryDirectory(prefix="net-relay-growth-") as workdir:
        rows = growth_cases(settings, Path(workdir))
        runner = Runner(Path(workdir), PIN if settings.bench.pin else (), settings.bench.time_limit)
        measured: list[list[Measurement]] = [[] for _ in rows]
        for run in range(1, runs + 1):
            for case, results in zip(rows, measured):
                if case.skipped:
                    continue
                progress(f"run {run}/{runs}  {case.table:<11}  {case.label}")
                results.append(await _measure(runner, case))
                progress(f"    {_headline(case, results[-1])}")
    environment["load_after"] = list(os.getloadavg())
    summaries = [summary(case, results) for case, results in zip(rows, measured)]
    return GrowthReport(settings, tuple(compared(summaries)), environment)


def _headline(case: GrowthCase, measurement: Measurement) -> str:
    if measurement.failure:
        return measurement.failure
    table = TABLES[case.table]
    return f"{measurement.metrics[table.headline]:,.1f} {table.unit}"


def _environment(settings: GrowthSettings) -> dict[str, object]:
    try:
        version: str | None = importlib.metadata.version("net-relay")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "pinned_to_cpu0": settings.bench.pin, "net_relay": version,
            "loop": loop_name(settings.bench.loop), "load_before": list(os.getloadavg())}


async def run_growth_command(settings: GrowthSettings, as_json: bool) -> int:
    """``net-relay bench --growth``: progress on stderr, the tables (or JSON) on stdout.

    Exit status 1 when some row that should have run has no successful run.
    """
    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = await run_growth(settings, progress)
    print(render_growth_json(report) if as_json else render_growth_table(report))
    return 1 if report.failed else 0
