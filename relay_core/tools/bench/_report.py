"""The report: runs summed up into rows (medians, ratios, targets), as a table or JSON.

Ratios divide a row's headline figure by the same figure of its scenario's
baseline row (raw asyncio, pyzmq) in this same bench: never by figures from
another run or another machine. The targets are the goals of the
"Performance" issue, for net-relay rows with msgpack.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._cases import Case
from ._runner import Measurement
from ._scenarios import SCENARIOS, Scenario
from ._settings import BASELINES, BenchSettings

__all__ = ["TARGETS", "BenchReport", "Row", "Target", "render_json", "render_table", "summarize"]


@dataclass(frozen=True, slots=True)
class Target:
    """A goal: the headline ratio of (scenario, transport) against a baseline."""

    scenario: str
    transport: str
    against: str
    at_least: bool
    factor: float
    pinned_factor: float | None = None
    """The factor that applies instead when the bench runs pinned to one CPU."""

    def text(self, pinned: bool) -> str:
        return f"{'>=' if self.at_least else '<='} {self._factor(pinned):.1f}x {self.against}"

    def met(self, ratio: float, pinned: bool) -> bool:
        factor = self._factor(pinned)
        return ratio >= factor if self.at_least else ratio <= factor

    def _factor(self, pinned: bool) -> float:
        return self.pinned_factor if pinned and self.pinned_factor else self.factor


TARGETS = (
    Target("one-way", "udp", "raw", True, 1.5),
    Target("rpc", "udp", "raw", False, 1.3, 1.5),
    Target("inflight", "udp", "raw", True, 1.0),
    Target("one-way", "tcp", "pyzmq", True, 1.0),
)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report: medians over the runs that succeeded, and ratios."""

    case: Case
    status: str
    """``ok``, ``timeout``, ``failed`` or ``skipped``."""
    detail: str
    """Why a row was skipped or failed, or which of its runs failed."""
    runs_ok: int
    metrics: Mapping[str, float]
    ratios: Mapping[str, float | None]
    """``raw`` and ``pyzmq``: this row's headline metric over the baseline row's."""
    target: str = ""
    target_met: bool | None = None


@dataclass(frozen=True, slots=True)
class BenchReport:
    settings: BenchSettings
    rows: tuple[Row, ...]
    environment: Mapping[str, object]

    @property
    def failed(self) -> bool:
        """True when some row that should have run has no successful run."""
        return any(row.status in ("timeout", "failed") for row in self.rows)


def summarize(
    cases: Sequence[Case], measured: Sequence[Sequence[Measurement]], pinned: bool
) -> tuple[Row, ...]:
    """One row per case (``measured[i]`` holds the runs of ``cases[i]``): medians,
    then ratios to its scenario's baselines, then the target where one applies."""
    rows = [_summary(case, runs) for case, runs in zip(cases, measured, strict=True)]
    baselines = {(row.case.scenario, row.case.baseline): row for row in rows if row.case.baseline}
    done = []
    for row in rows:
        headline = SCENARIOS[row.case.scenario].headline
        ratios = {name: _ratio(row, baselines.get((row.case.scenario, name)), headline)
                  for name in BASELINES}
        done.append(_with_target(dataclasses.replace(row, ratios=ratios), pinned))
    return tuple(done)


def _summary(case: Case, measurements: Sequence[Measurement]) -> Row:
    if case.skipped:
        return Row(case, "skipped", case.skipped, 0, {}, {})
    good = [m.metrics for m in measurements if not m.failure]
    failures = [f"run {i}: {m.failure}" for i, m in enumerate(measurements, 1) if m.failure]
    if not good:
        status = "timeout" if all(m.failure == "timeout" for m in measurements) else "failed"
        return Row(case, status, "; ".join(failures), 0, {}, {})
    keys = dict.fromkeys(key for metrics in good for key in metrics)
    medians = {key: statistics.median(m[key] for m in good if key in m) for key in keys}
    detail = f"{len(good)} of {len(measurements)} runs ok; {'; '.join(failures)}"
    return Row(case, "ok", detail if failures else "", len(good), medians, {})


def _ratio(row: Row, baseline: Row | None, metric: str) -> float | None:
    if baseline is None or metric not in row.metrics or not baseline.metrics.get(metric):
        return None
    return row.metrics[metric] / baseline.metrics[metric]


def _with_target(row: Row, pinned: bool) -> Row:
    case = row.case
    if (case.implementation, case.codec) != ("net-relay", "msgpack"):
        return row
    key = (case.scenario, case.transport)
    target = next((t for t in TARGETS if (t.scenario, t.transport) == key), None)
    if target is None:
        return row
    ratio = row.ratios.get(target.against)
    met = None if ratio is None else target.met(ratio, pinned)
    return dataclasses.replace(row, target=target.text(pinned), target_met=met)


def render_json(report: BenchReport) -> str:
    """The report as one JSON document: settings, environment, and one object per row."""
    rows = [
        {**{k: getattr(row.case, k) for k in ("scenario", "implementation", "variant",
                                               "transport", "codec", "label")},
         "status": row.status, "detail": row.detail, "runs_ok": row.runs_ok,
         "metrics": dict(row.metrics), "ratios": dict(row.ratios),
         "target": {"text": row.target, "met": row.target_met} if row.target else None}
        for row in report.rows
    ]
    settings = dataclasses.asdict(report.settings)
    return json.dumps({"settings": settings, "environment": dict(report.environment),
                       "rows": rows}, indent=2)


def render_table(report: BenchReport) -> str:
    """The report as text: one table per scenario, then how and where it was measured."""
    out = []
    for name, scenario in SCENARIOS.items():
        rows = [row for row in report.rows if row.case.scenario == name]
        if not rows:
            continue
        heading = ["row", *(h for h, _ in scenario.columns), "x raw", "x pyzmq", "target", "note"]
        out += [scenario.title,
                *_aligned([heading, *(_table_row(row, scenario) for row in rows)]), ""]
    env, settings = report.environment, report.settings
    out.append(
        f"median of {settings.runs} run(s) per row; ratios compare rows of this bench only. "
        f"{env.get('cpus')} CPUs, {'pinned to CPU 0' if settings.pin else 'not pinned'}, "
        f"Python {env.get('python')}, load average {_load(env.get('load_before'))} before, "
        f"{_load(env.get('load_after'))} after. net-relay {env.get('net_relay_build', '?')}, "
        f"its rows on {env.get('loop', '?')}; raw asyncio rows on the stock asyncio loop.")
    return "\n".join(out)


def _table_row(row: Row, scenario: Scenario) -> list[str]:
    cells = [row.case.label]
    cells += [_cell(row.metrics.get(metric), 1 if metric == "loss_pct" else 0)
              for _, metric in scenario.columns]
    cells += [_cell(row.ratios.get(name), 2) for name in BASELINES]
    verdict = {True: "met", False: "missed", None: "n/a"}[row.target_met]
    cells.append(f"{row.target}: {verdict}" if row.target else "")
    cells.append(f"skipped: {row.detail}" if row.status == "skipped" else row.detail)
    return cells


def _cell(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _aligned(lines: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(*lines)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in lines]


def _load(value: object) -> str:
    return f"{value[0]:.2f}" if isinstance(value, list) and value else "?"
