"""``net-relay bench``: net-relay side by side with raw asyncio sockets and pyzmq, in one run.

Three scenarios, each a set of rows: one-way throughput (messages received per
second, and loss), sequential RPC round trips (p50 and p99 latency), and RPC
throughput with many requests in flight (replies per second). A row is one way
of doing the job: a raw asyncio or pyzmq baseline, or net-relay over one
transport with one codec. benchmarks/README.md says how to read the table.

Rules this module keeps:

- Every run of a row is two child processes (:mod:`relay_core._bench_workers`)
  talking over 127.0.0.1; this process only starts, reads and stops them, and
  kills both on every way out: done, failure, timeout or Ctrl-C.
- Every run is bounded by ``time_limit``; a run that overruns reports "timeout".
- Runs interleave (run 1 of every row, then run 2 of every row, ...), so load
  that drifts during the bench touches every row alike. A row reports the
  median of its runs, and ratios are taken between rows of this one bench.
- A row that cannot run here (transport or codec not installed, pyzmq missing,
  no certificate for quic) is kept in the report as "skipped" with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ConfigError, RelayError
from ._registry import PluginRegistry

__all__ = [
    "BenchReport",
    "BenchSettings",
    "Case",
    "Measurement",
    "Row",
    "add_arguments",
    "render_json",
    "render_table",
    "run_bench",
    "run_command",
    "settings_from_args",
]

WORKERS = "relay_core._bench_workers"
BASELINES = ("raw", "pyzmq")
QUICK = {"messages": 2_000, "rpcs": 200, "inflight_rpcs": 2_000, "runs": 1}
"""Counts --quick uses unless given explicitly: seconds per row, for smoke tests."""
MAX_INFLIGHT = 10_000
"""The echo actor's mailbox size: more requests in flight would be refused as overloaded."""
PIN = ("taskset", "-c", "0")
WARMUP = 100
"""Round trips a caller makes before it starts measuring (fewer if --rpcs is smaller)."""
ZMQ_MISSING = "pyzmq is not installed (pip install 'net-relay[bench]')"

Result = Mapping[str, Any]


class _RunFailed(Exception):
    """One run of one row produced no result; the message says why."""


# -- settings ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """What to run: counts, rows and limits. Invalid values raise ConfigError at once."""

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

    def __post_init__(self) -> None:
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


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _names(text: str | None, flag: str) -> tuple[str, ...] | None:
    if text is None:
        return None
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
        names = _names(getattr(args, name), _flag(name))
        if names is not None:
            given[name] = names
    return BenchSettings(pin=args.pin, **given)


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
    parser.add_argument("--transports", help="e.g. udp,tcp,quic (every installed transport)")
    parser.add_argument("--codecs", help="e.g. msgpack,cbor,json (msgpack)")
    parser.add_argument("--baselines", help="raw,pyzmq or fewer (both); '' for none")
    parser.add_argument("--pin", action="store_true", help="run every process on CPU 0")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="tiny counts, one run")
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help="seconds per run of a row before it is killed (120)")


# -- rows ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One row of the table: the worker roles on each side, or why it cannot run."""

    scenario: str
    implementation: str
    """``raw asyncio``, ``pyzmq`` or ``net-relay``."""
    variant: str
    """How the job is done, e.g. ``1 msg/datagram`` or ``req/rep``; the codec for net-relay."""
    transport: str
    codec: str
    server: tuple[str, ...] = ()
    client: tuple[str, ...] = ()
    """Worker arguments; the client also gets ``--target`` with the server's address."""
    baseline: str = ""
    """``raw`` or ``pyzmq`` when this scenario's ratios are taken against this row."""
    skipped: str = ""

    @property
    def label(self) -> str:
        return f"{self.implementation} {self.transport} {self.variant}"


@dataclass(frozen=True, slots=True)
class _RelaySetup:
    """One (transport, codec) pair for the net-relay rows, with its worker arguments."""

    transport: str
    codec: str
    arguments: tuple[str, ...]
    skipped: str = ""


def _one_way_cases(settings: BenchSettings, relay: Sequence[_RelaySetup]) -> list[Case]:
    count = ("--messages", str(settings.messages))
    cases = []
    if "raw" in settings.baselines:
        for batch, variant, baseline in ((1, "1 msg/datagram", "raw"), (20, "20 msg/datagram", "")):
            source = ("udp-source", *count, "--batch", str(batch))
            cases.append(Case("one-way", "raw asyncio", variant, "udp", "msgpack",
                              ("udp-sink",), source, baseline))
    if "pyzmq" in settings.baselines:
        cases.append(Case("one-way", "pyzmq", "push/pull", "tcp", "msgpack", ("zmq-pull",),
                          ("zmq-push", *count), "pyzmq", _zmq_missing()))
    return cases + [
        Case("one-way", "net-relay", r.codec, r.transport, r.codec, ("relay-sink", *r.arguments),
             ("relay-source", *r.arguments, *count), skipped=r.skipped)
        for r in relay
    ]


def _rpc_cases(settings: BenchSettings, relay: Sequence[_RelaySetup]) -> list[Case]:
    calls = ("--rpcs", str(settings.rpcs), "--warmup", str(settings.warmup))
    cases = []
    if "raw" in settings.baselines:
        cases.append(Case("rpc", "raw asyncio", "echo", "udp", "msgpack", ("udp-echo",),
                          ("udp-call", *calls), "raw"))
    if "pyzmq" in settings.baselines:
        cases.append(Case("rpc", "pyzmq", "req/rep", "tcp", "msgpack", ("zmq-rep",),
                          ("zmq-req", *calls), "pyzmq", _zmq_missing()))
    return cases + [
        Case("rpc", "net-relay", r.codec, r.transport, r.codec, ("relay-echo", *r.arguments),
             ("relay-call", *r.arguments, *calls), skipped=r.skipped)
        for r in relay
    ]


def _inflight_cases(settings: BenchSettings, relay: Sequence[_RelaySetup]) -> list[Case]:
    calls = ("--rpcs", str(settings.inflight_rpcs), "--inflight", str(settings.inflight),
             "--warmup", str(settings.warmup))
    cases = []
    if "raw" in settings.baselines:
        cases.append(Case("inflight", "raw asyncio", "echo", "udp", "msgpack", ("udp-echo",),
                          ("udp-call", *calls), "raw"))
    return cases + [
        Case("inflight", "net-relay", r.codec, r.transport, r.codec, ("relay-echo", *r.arguments),
             ("relay-call", *r.arguments, *calls), skipped=r.skipped)
        for r in relay
    ]


def _zmq_missing() -> str:
    return "" if importlib.util.find_spec("zmq") else ZMQ_MISSING


def _relay_setups(settings: BenchSettings, workdir: Path) -> list[_RelaySetup]:
    """Every selected (transport, codec) pair, skipped with a reason where it cannot run."""
    registry = PluginRegistry.load()
    transports = settings.transports or tuple(registry.transport_schemes())
    problems = {name: _missing(registry.transport_class, name) for name in transports}
    problems |= {name: _missing(registry.codec, name) for name in settings.codecs}
    tls: tuple[str, ...] = ()
    if "quic" in transports and not problems["quic"]:
        tls, problems["quic"] = _quic_files(workdir)
    return [
        _RelaySetup(transport, codec, ("--transport", transport, "--codec", codec, *tls),
                    problems[transport] or problems[codec])
        for transport in transports for codec in settings.codecs
    ]


def _missing(lookup: Callable[[str], object], name: str) -> str:
    try:
        lookup(name)
    except RelayError as exc:  # UnknownPlugin, or a codec that cannot be created
        return str(exc)
    return ""


def _quic_files(workdir: Path) -> tuple[tuple[str, ...], str]:
    """Worker arguments naming a fresh self-signed pair, or a reason quic cannot run."""
    cert, key = workdir / "bench-cert.pem", workdir / "bench-key.pem"
    try:
        certs = importlib.import_module("relay_transports._certs")
        certs.generate_self_signed(cert, key)
    except (ImportError, AttributeError, RelayError) as exc:
        return (), f"cannot make a certificate for quic: {type(exc).__name__}: {exc}"
    return ("--cert", str(cert), "--key", str(key)), ""


# -- scenarios: what a run's two results mean ---------------------------------------------


def _one_way(server: Result, client: Result) -> dict[str, float]:
    sent, received, window = client["sent"], server["received"], server["window"]
    if received < 2 or not window > 0:
        raise _RunFailed(f"{received} of {sent} messages arrived: too few to time")
    metrics = {"sent": sent, "received": received, "received_per_s": received / window,
               "loss_pct": 100 * (sent - received) / sent}
    if server.get("mailbox_full"):
        metrics["mailbox_full"] = server["mailbox_full"]
    return metrics


def _round_trips(server: Result, client: Result) -> dict[str, float]:
    if not client["completed"]:
        raise _RunFailed(f"no reply to any of {client['lost']} requests")
    return {key: client[key] for key in ("completed", "lost", "p50_us", "p99_us")}


def _throughput(server: Result, client: Result) -> dict[str, float]:
    if not client["completed"]:
        raise _RunFailed(f"no reply to any of {client['lost']} requests")
    rate = client["completed"] / client["seconds"]
    return {"completed": client["completed"], "lost": client["lost"], "replies_per_s": rate}


@dataclass(frozen=True, slots=True)
class _Scenario:
    title: str
    headline: str
    """The metric ratios and targets use: the row's value divided by the baseline's."""
    unit: str
    combine: Callable[[Result, Result], dict[str, float]]
    columns: tuple[tuple[str, str], ...]
    """(heading, metric) pairs shown in the table."""


SCENARIOS: Mapping[str, _Scenario] = {
    "one-way": _Scenario(
        "one-way throughput: messages/s received (higher is better)", "received_per_s", "msg/s",
        _one_way, (("sent", "sent"), ("received", "received"), ("msg/s", "received_per_s"),
                   ("loss %", "loss_pct"))),
    "rpc": _Scenario(
        "RPC round trip, one at a time: latency in microseconds (lower is better)", "p50_us",
        "us p50", _round_trips, (("rpcs", "completed"), ("lost", "lost"), ("p50 us", "p50_us"),
                                 ("p99 us", "p99_us"))),
    "inflight": _Scenario(
        "RPC throughput with requests in flight: replies/s (higher is better)", "replies_per_s",
        "replies/s", _throughput, (("replies", "completed"), ("lost", "lost"),
                                   ("replies/s", "replies_per_s"))),
}


@dataclass(frozen=True, slots=True)
class _Target:
    """A goal from the "Performance" issue, for net-relay rows with msgpack."""

    scenario: str
    transport: str
    against: str
    at_least: bool
    factor: float
    pinned_factor: float | None = None

    def text(self, pinned: bool) -> str:
        factor = self.pinned_factor if pinned and self.pinned_factor else self.factor
        return f"{'>=' if self.at_least else '<='} {factor:g}x {self.against}"

    def met(self, ratio: float, pinned: bool) -> bool:
        factor = self.pinned_factor if pinned and self.pinned_factor else self.factor
        return ratio >= factor if self.at_least else ratio <= factor


TARGETS = (
    _Target("one-way", "udp", "raw", True, 1.5),
    _Target("rpc", "udp", "raw", False, 1.3, 1.5),
    _Target("inflight", "udp", "raw", True, 1.0),
    _Target("one-way", "tcp", "pyzmq", True, 1.0),
)


# -- running children ----------------------------------------------------------------


class _Child:
    """One worker process: JSON lines out, a stop line in, stderr kept in a file."""

    def __init__(self, process: asyncio.subprocess.Process, role: str, stderr: Path) -> None:
        self.process, self.role, self.stderr = process, role, stderr

    async def result(self) -> Result:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            await self.process.wait()
            raise _RunFailed(f"{self.role} exited ({self.process.returncode}) without a "
                             f"result{self._last_words()}")
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise _RunFailed(f"{self.role} printed {line[:80]!r}, not a JSON result") from None
        if "error" in value:
            raise _RunFailed(f"{self.role}: {value['error']}")
        return value  # type: ignore[no-any-return]

    async def stop(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.process.stdin.write(b"stop\n")
            await self.process.stdin.drain()

    async def end(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        if self.process.stdin is not None:
            self.process.stdin.close()
        await self.process.wait()

    def _last_words(self) -> str:
        lines = self.stderr.read_text(errors="replace").strip().splitlines()
        return f": {lines[-1]}" if lines else ""


_Start = Callable[[Sequence[str]], Awaitable[_Child]]
"""Start one worker with these arguments; it is killed when the run ends."""


@dataclass(slots=True)
class _Runner:
    """Starts workers (pinned if asked), each in its own session so Ctrl-C reaches only us."""

    workdir: Path
    prefix: tuple[str, ...]
    started: int = 0

    @contextlib.asynccontextmanager
    async def children(self) -> AsyncIterator[_Start]:
        children: list[_Child] = []

        async def start(arguments: Sequence[str]) -> _Child:
            children.append(await self._start(arguments))
            return children[-1]

        try:
            yield start
        finally:
            await asyncio.shield(asyncio.gather(*(child.end() for child in children)))

    async def _start(self, arguments: Sequence[str]) -> _Child:
        self.started += 1
        stderr = self.workdir / f"{self.started:04d}-{arguments[0]}.stderr"
        with stderr.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                *self.prefix, sys.executable, "-m", WORKERS, *arguments,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=sink,
                start_new_session=True)
        return _Child(process, arguments[0], stderr)


@dataclass(frozen=True, slots=True)
class Measurement:
    """What one run of one row measured, or why it measured nothing."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    failure: str = ""
    """Empty, ``timeout``, or ``failed: REASON``."""


async def _exchange(case: Case, start: _Start) -> tuple[Result, Result]:
    server = await start(case.server)
    ready = await server.result()
    client = await start((*case.client, "--target", str(ready["ready"])))
    client_result = await client.result()
    await server.stop()
    return await server.result(), client_result


async def _measure(case: Case, runner: _Runner, time_limit: float) -> Measurement:
    try:
        async with runner.children() as start:
            async with asyncio.timeout(time_limit):
                server, client = await _exchange(case, start)
        return Measurement(SCENARIOS[case.scenario].combine(server, client))
    except TimeoutError:
        return Measurement(failure="timeout")
    except _RunFailed as exc:
        return Measurement(failure=f"failed: {exc}")
    except (KeyError, TypeError, ZeroDivisionError) as exc:
        return Measurement(failure=f"failed: a worker's result lacks {exc}")


# -- the report ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the report: medians over the runs that succeeded, and ratios."""

    case: Case
    status: str
    """``ok``, ``timeout``, ``failed`` or ``skipped``."""
    detail: str
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


def _summary(case: Case, measurements: Sequence[Measurement]) -> Row:
    if case.skipped:
        return Row(case, "skipped", case.skipped, 0, {}, {})
    good = [m.metrics for m in measurements if not m.failure]
    failures = [f"run {i}: {m.failure}" for i, m in enumerate(measurements, 1) if m.failure]
    if not good:
        status = "timeout" if measurements[0].failure == "timeout" else "failed"
        return Row(case, status, "; ".join(failures), 0, {}, {})
    medians = {key: statistics.median(m[key] for m in good if key in m) for key in good[0]}
    detail = f"{len(good)} of {len(measurements)} runs; " + "; ".join(failures) if failures else ""
    return Row(case, "ok", detail, len(good), medians, {})


def _with_ratios(rows: Sequence[Row], pinned: bool) -> tuple[Row, ...]:
    baselines = {(row.case.scenario, row.case.baseline): row for row in rows if row.case.baseline}
    done = []
    for row in rows:
        headline = SCENARIOS[row.case.scenario].headline
        ratios = {name: _ratio(row, baselines.get((row.case.scenario, name)), headline)
                  for name in BASELINES}
        done.append(_with_target(dataclasses.replace(row, ratios=ratios), pinned))
    return tuple(done)


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


def _environment(settings: BenchSettings) -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pinned_to_cpu0": settings.pin,
        "net_relay": _version("net-relay"),
        "pyzmq": _version("pyzmq"),
        "load_before": list(os.getloadavg()),
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _headline(case: Case, measurement: Measurement) -> str:
    if measurement.failure:
        return measurement.failure
    scenario = SCENARIOS[case.scenario]
    return f"{measurement.metrics[scenario.headline]:,.0f} {scenario.unit}"


async def run_bench(
    settings: BenchSettings, progress: Callable[[str], None] = lambda line: None
) -> BenchReport:
    """Run every row ``settings.runs`` times, interleaved, and return the report."""
    environment = _environment(settings)
    with tempfile.TemporaryDirectory(prefix="net-relay-bench-") as workdir:
        runner = _Runner(Path(workdir), PIN if settings.pin else ())
        relay = _relay_setups(settings, Path(workdir))
        cases = [*_one_way_cases(settings, relay), *_rpc_cases(settings, relay),
                 *_inflight_cases(settings, relay)]
        measured: dict[int, list[Measurement]] = {index: [] for index in range(len(cases))}
        for run in range(1, settings.runs + 1):
            for index, case in enumerate(cases):
                if case.skipped:
                    continue
                progress(f"run {run}/{settings.runs}  {case.scenario:<8}  {case.label}")
                measured[index].append(await _measure(case, runner, settings.time_limit))
                progress(f"    {_headline(case, measured[index][-1])}")
    rows = [_summary(case, measured[i]) for i, case in enumerate(cases)]
    environment["load_after"] = list(os.getloadavg())
    return BenchReport(settings, _with_ratios(rows, settings.pin), environment)


# -- output --------------------------------------------------------------------------


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


def _cell(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _table_row(row: Row, scenario: _Scenario) -> list[str]:
    cells = [row.case.label]
    cells += [_cell(row.metrics.get(metric), 1 if metric == "loss_pct" else 0)
              for _, metric in scenario.columns]
    cells += [_cell(row.ratios.get(name), 2) for name in BASELINES]
    verdict = {True: "met", False: "missed", None: "n/a"}[row.target_met]
    cells.append(f"{row.target}: {verdict}" if row.target else "")
    cells.append(f"skipped: {row.detail}" if row.status == "skipped" else row.detail)
    return cells


def _aligned(lines: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(*lines)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
            for line in lines]


def render_table(report: BenchReport) -> str:
    """The report as text: one table per scenario, then how and where it was measured."""
    out = []
    for name, scenario in SCENARIOS.items():
        rows = [row for row in report.rows if row.case.scenario == name]
        if not rows:
            continue
        heading = ["row", *(h for h, _ in scenario.columns), "x raw", "x pyzmq", "target", "note"]
        out += [f"{name}: {scenario.title}",
                *_aligned([heading, *(_table_row(row, scenario) for row in rows)]), ""]
    env, settings = report.environment, report.settings
    out.append(
        f"median of {settings.runs} run(s) per row; ratios compare rows of this bench only. "
        f"{env['cpus']} CPUs, {'pinned to CPU 0' if settings.pin else 'not pinned'}, "
        f"Python {env['python']}, load average {_load(env['load_before'])} before, "
        f"{_load(env['load_after'])} after.")
    return "\n".join(out)


def _load(value: object) -> str:
    return f"{value[0]:.2f}" if isinstance(value, list) and value else "?"


async def run_command(args: argparse.Namespace) -> int:
    """``net-relay bench``: progress on stderr, the table (or JSON) on stdout."""
    settings = settings_from_args(args)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = await run_bench(settings, progress)
    print(render_json(report) if args.json else render_table(report))
    return 1 if report.failed else 0
