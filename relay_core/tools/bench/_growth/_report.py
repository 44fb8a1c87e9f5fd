"""The growth report: runs summed up into rows (medians), compared, as tables or JSON."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._report import _aligned, _cell, _load
from .._runner import Measurement
from ._cases import GrowthCase
from ._settings import GrowthSettings

__all__ = ["TABLES", "GrowthReport", "GrowthRow", "compared", "render_growth_json",
           "render_growth_table", "summary"]


@dataclass(frozen=True, slots=True)
class _Table:
    title: str
    headline: str
    """The metric a progress line shows after each run."""
    unit: str
    columns: tuple[tuple[str, str, int], ...]
    """(heading, metric or fact, decimals)."""


TABLES: Mapping[str, _Table] = {
    "peers": _Table(
        "throughput by sender peers: messages/s one node receives (higher is better)",
        "received_per_s", "msg/s",
        (("peers", "peers", 0), ("procs", "processes", 0), ("sent", "sent", 0),
         ("received", "received", 0), ("msg/s", "received_per_s", 0), ("loss %", "loss_pct", 1))),
    "memory": _Table(
        "memory per idle peer: bytes a node holds per peer it exchanged one RPC with "
        "(lower is better)", "per_peer", "B/peer",
        (("peers", "peers", 0), ("lost", "lost", 0), ("config B/peer", "config_per_peer", 0),
         ("state B/peer", "state_per_peer", 0), ("B/peer", "per_peer", 0))),
    "sizes": _Table(
        "message size sweep: one-way messages/s and payload MB/s received (higher is better)",
        "received_per_s", "msg/s",
        (("sent", "sent", 0), ("received", "received", 0), ("msg/s", "received_per_s", 0),
         ("MB/s", "mb_per_s", 1), ("loss %", "loss_pct", 1))),
    "compression": _Table(
        "compression: bytes on the wire per message (lower is better) and messages/s",
        "wire_bytes_per_msg", "B/msg on the wire",
        (("payload B", "payload_bytes_per_msg", 0), ("wire B/msg", "wire_bytes_per_msg", 1),
         ("x none", "wire_vs_first", 2), ("msg/s", "received_per_s", 0),
         ("loss %", "loss_pct", 1))),
}


@dataclass(frozen=True, slots=True)
class GrowthRow:
    """One line of a table: medians over the runs that succeeded."""

    case: GrowthCase
    status: str
    """``ok``, ``timeout``, ``failed`` or ``skipped``."""
    detail: str
    runs_ok: int
    metrics: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class GrowthReport:
    settings: GrowthSettings
    rows: tuple[GrowthRow, ...]
    environment: Mapping[str, object]

    @property
    def failed(self) -> bool:
        """True when some row that should have run has no successful run."""
        return any(row.status in ("timeout", "failed") for row in self.rows)


def summary(case: GrowthCase, measurements: Sequence[Measurement]) -> GrowthRow:
    if case.skipped:
        return GrowthRow(case, "skipped", case.skipped, 0, {})
    good = [m.metrics for m in measurements if not m.failure]
    failures = [f"run {i}: {m.failure}" for i, m in enumerate(measurements, 1) if m.failure]
    if not good:
        status = "timeout" if all(m.failure == "timeout" for m in measurements) else "failed"
        return GrowthRow(case, status, "; ".join(failures), 0, {})
    medians = {key: statistics.median(m[key] for m in good if key in m)
               for key in dict.fromkeys(key for metrics in good for key in metrics)}
    detail = f"{len(good)} of {len(measurements)} runs ok; {'; '.join(failures)}"
    return GrowthRow(case, "ok", detail if failures else "", len(good), medians)


def compared(rows: Sequence[GrowthRow]) -> list[GrowthRow]:
    """Each grouped row with ``wire_vs_first``: its wire bytes over its group's first row's."""
    firsts: dict[str, GrowthRow] = {}
    done = []
    for row in rows:
        first = firsts.setdefault(row.case.group, row) if row.case.group else None
        wire = row.metrics.get("wire_bytes_per_msg")
        reference = first.metrics.get("wire_bytes_per_msg") if first else None
        if wire is not None and reference:
            row = GrowthRow(row.case, row.status, row.detail, row.runs_ok,
                            {**row.metrics, "wire_vs_first": wire / reference})
        done.append(row)
    return done


def render_growth_json(report: GrowthReport) -> str:
    """The report as one JSON document: settings, environment, and one object per row."""
    bench = report.settings.bench
    settings = {"messages": bench.messages, "runs": bench.runs, "transports": bench.transports,
                "codec": report.settings.codec, "pin": bench.pin, "time_limit": bench.time_limit,
                "peers": report.settings.peers, "idle_peers": report.settings.idle_peers,
                "volume_mb": report.settings.volume}
    rows = [{"table": row.case.table, "label": row.case.label, "status": row.status,
             "detail": row.detail, "runs_ok": row.runs_ok, "facts": dict(row.case.facts),
             "metrics": dict(row.metrics)} for row in report.rows]
    return json.dumps({"kind": "growth", "settings": settings,
                       "environment": dict(report.environment), "rows": rows}, indent=2)


def render_growth_table(report: GrowthReport) -> str:
    """The report as text: one table per kind of growth, then how and where it was measured."""
    out = []
    for name, table in TABLES.items():
        rows = [row for row in report.rows if row.case.table == name]
        if rows:
            heading = ["row", *(heading for heading, _, _ in table.columns), "note"]
            out += [table.title, *_aligned([heading, *(_line(row, table) for row in rows)]), ""]
    env, bench = report.environment, report.settings.bench
    out.append(
        f"median of {bench.runs} run(s) per row. {env.get('cpus')} CPUs, "
        f"{'pinned to CPU 0' if bench.pin else 'not pinned'}, Python {env.get('python')}, "
        f"event loop {env.get('loop', '?')}, load average {_load(env.get('load_before'))} "
        f"before, {_load(env.get('load_after'))} after.")
    return "\n".join(out)


def _line(row: GrowthRow, table: _Table) -> list[str]:
    values = {**row.case.facts, **row.metrics}
    cells = [_cell(values.get(key), digits) for _, key, digits in table.columns]
    note = f"skipped: {row.detail}" if row.status == "skipped" else row.detail
    return [row.case.label, *cells, note]
