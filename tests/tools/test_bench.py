"""`net-relay bench`: its command line, its report, and how it sums runs up.

The command-line tests run the real bench with tiny counts (udp, msgpack and
the raw baseline only). They check the shape of what it prints, never a figure:
figures depend on the machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from relay_core import ConfigError
from relay_core.runtime.loop import choose, loop_name
from relay_core.tools.bench import BenchSettings, Case, Measurement, summarize
from relay_core.tools.bench._cases import cases
from relay_core.tools.bench._workers._common import sample

BENCH = [sys.executable, "-m", "relay_core.tools.cli", "bench"]
TINY = ["--quick", "--messages", "200", "--rpcs", "20", "--inflight", "10",
        "--inflight-rpcs", "200", "--runs", "1", "--codecs", "msgpack", "--baselines", "raw"]
BENCH_LIMIT = 300.0
"""Seconds a whole tiny bench may take on a busy machine before the test fails."""


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BENCH, *args], capture_output=True, text=True, env=env,
                          timeout=BENCH_LIMIT, check=False)


# -- the command line ------------------------------------------------------------------


@pytest.mark.slow
def test_the_table_shows_every_scenario_with_ratios_and_skipped_rows() -> None:
    result = bench(*TINY, "--transports", "udp,nosuch")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for title in ("one-way throughput", "RPC round trip", "RPC throughput with requests"):
        assert any(line.startswith(title) for line in lines), result.stdout
    headings = [line.split() for line in lines if line.startswith("row ")]
    assert len(headings) == 3
    assert all(["x", "raw", "x", "pyzmq", "target", "note"] == h[-6:] for h in headings)
    raw = [line for line in lines if line.startswith("raw asyncio udp 1 msg/datagram")]
    assert len(raw) == 1 and " 1.00 " in raw[0]
    assert sum(line.startswith("net-relay udp msgpack") for line in lines) == 3
    skipped = [line for line in lines if line.startswith("net-relay nosuch msgpack")]
    assert len(skipped) == 3 and all("skipped: no transport named 'nosuch'" in s for s in skipped)
    assert "run 1/1" in result.stderr  # progress goes to stderr, not into the table


UVLOOP_ROWS = {("one-way", "raw uvloop udp 1 msg/datagram"), ("rpc", "raw uvloop udp echo"),
               ("inflight", "raw uvloop udp echo")}
"""Rows for information, run only when the net-relay rows run on uvloop."""


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["auto", pytest.param("uvloop", marks=pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None, reason="uvloop is not installed"))])
def test_json_output_has_settings_environment_and_one_object_per_row(loop: str) -> None:
    result = bench(*TINY, "--transports", "udp", "--json", "--loop", loop)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["settings"]["messages"] == 200 and report["settings"]["runs"] == 1
    assert {"python", "cpus", "load_before", "load_after"} <= set(report["environment"])
    assert report["environment"]["loop"] == loop_name(loop)
    rows = {(row["scenario"], row["label"]): row for row in report["rows"]}
    assert set(rows) == {
        ("one-way", "raw asyncio udp 1 msg/datagram"), ("one-way", "raw asyncio udp 20 msg/datagram"),
        ("one-way", "net-relay udp msgpack"), ("rpc", "raw asyncio udp echo"),
        ("rpc", "net-relay udp msgpack"), ("inflight", "raw asyncio udp echo"),
        ("inflight", "net-relay udp msgpack"),
    } | (UVLOOP_ROWS if choose(loop) == "uvloop" else set())
    assert all(row["status"] == "ok" and row["runs_ok"] == 1 for row in rows.values())
    one_way = rows["one-way", "net-relay udp msgpack"]
    assert one_way["metrics"]["sent"] == 200
    assert 0 < one_way["metrics"]["received"] <= 200
    assert {"p50_us", "p99_us"} <= set(rows["rpc", "net-relay udp msgpack"]["metrics"])
    assert rows["rpc", "raw asyncio udp echo"]["ratios"] == {"raw": 1.0, "pyzmq": None}
    assert rows["one-way", "net-relay udp msgpack"]["target"]["text"] == ">= 1.5x raw"


def test_a_run_that_overruns_its_time_limit_is_killed_and_reported_as_timeout() -> None:
    result = bench(*TINY, "--transports", "udp", "--time-limit", "0.01", "--json")
    assert result.returncode == 1
    rows = json.loads(result.stdout)["rows"]
    assert rows and all(row["status"] == "timeout" for row in rows)
    assert all(row["metrics"] == {} and row["ratios"]["raw"] is None for row in rows)


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--runs", "0"], "--runs 0 is not allowed"),
        (["--inflight", "20000"], "--inflight 20000 is not allowed"),
        (["--time-limit", "0"], "--time-limit 0.0 is not allowed"),
        (["--baselines", "raw,zmq"], "unknown zmq; choose from raw, pyzmq"),
        (["--transports", "udp,,tcp"], "expected names separated by commas"),
    ],
)
def test_bad_options_are_refused_in_one_line_before_anything_runs(
    args: list[str], complaint: str
) -> None:
    result = bench(*args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and complaint in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_rpc_breakdown_script_times_every_segment_for_raw_and_net_relay() -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "rpc_breakdown.py"
    result = subprocess.run([sys.executable, str(script), "--rpcs", "10", "--runs", "1",
                             "--warm-up", "5"], capture_output=True, text=True,
                            timeout=BENCH_LIMIT, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    rows = {line[:22].strip(): line[22:].split() for line in lines[2:8]}
    assert list(rows) == ["client send path", "to the server", "server path", "to the client",
                          "client receive path", "round trip"]
    assert all(len(figures) == 2 and all(float(f) > 0 for f in figures)
               for figures in rows.values())
    assert lines[8].startswith("CPU time per round trip")
    cpu = [(line[:22].strip(), line[22:].split()) for line in lines[9:]]
    assert [label for label, _ in cpu] == ["client CPU", "of it user", "server CPU", "of it user"]
    # A process's CPU clock may tick coarser than ten round trips: zero is possible.
    assert all(len(figures) == 2 and all(float(f) >= 0 for f in figures) for _, figures in cpu)


INSTRUCTIONS = Path(__file__).resolve().parents[2] / "benchmarks" / "instructions.py"


@pytest.mark.parametrize(("scenario", "transport"), [("rpc", "udp"), ("oneway", "tcp")])
def test_the_instruction_probe_runs_its_scenario_to_the_end(scenario: str, transport: str) -> None:
    result = subprocess.run([sys.executable, str(INSTRUCTIONS), "--scenario", scenario,
                             "--transport", transport, "--probe", "20"],
                            capture_output=True, text=True, timeout=BENCH_LIMIT, check=False)
    assert result.returncode == 0, result.stderr


def test_the_instruction_count_refuses_runs_that_cannot_be_subtracted() -> None:
    result = subprocess.run([sys.executable, str(INSTRUCTIONS), "--short", "10", "--long", "10"],
                            capture_output=True, text=True, timeout=BENCH_LIMIT, check=False)
    assert result.returncode == 2 and "need 0 < short < long" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("arguments", "message"), [
    (["--side", "sender"], "--side counts a one-way test: add --scenario oneway"),
    (["--scenario", "oneway", "--side", "receiver"], "use --transport tcp"),
    (["--scenario", "oneway", "--roles", "pyzmq"], "--roles pyzmq needs --side"),
])
def test_the_instruction_count_refuses_a_side_it_cannot_count(arguments: list[str],
                                                              message: str) -> None:
    result = subprocess.run([sys.executable, str(INSTRUCTIONS), *arguments],
                            capture_output=True, text=True, timeout=BENCH_LIMIT, check=False)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_loop_in_the_environment_is_refused_in_one_line() -> None:
    result = bench("--quick", env={**os.environ, "NET_RELAY_LOOP": "fast"})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "NET_RELAY_LOOP 'fast' is not allowed: choose auto, asyncio, uvloop" in result.stderr


def test_pinning_without_taskset_is_refused_with_what_to_do(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # a directory with no taskset in it
    result = bench("--pin", "--quick", env=env)
    assert result.returncode == 1
    assert "--pin needs the taskset command" in result.stderr
    assert "Traceback" not in result.stderr


# -- the rows and their event loops -----------------------------------------------------


def workers_loops(case: Case) -> set[str]:
    """The --loop each worker of a row is started with."""
    return {args[args.index("--loop") + 1] for args in (case.server, case.client)}


def test_on_the_stock_loop_every_worker_is_told_so_and_no_uvloop_row_is_added(
    tmp_path: Path
) -> None:
    rows = cases(BenchSettings(loop="asyncio", transports=("udp",), baselines=("raw",)), tmp_path)
    assert all(workers_loops(row) == {"asyncio"} for row in rows)
    assert not any("uvloop" in row.label for row in rows)


def test_on_uvloop_raw_baselines_keep_the_stock_loop_and_uvloop_rows_are_informative(
    tmp_path: Path
) -> None:
    try:
        choose("uvloop")
    except ConfigError:
        pytest.skip("uvloop is not installed (pip install 'net-relay[fast]')")
    rows = cases(BenchSettings(loop="uvloop", transports=("udp",), baselines=("raw",)), tmp_path)
    loops = {(row.scenario, row.label): workers_loops(row) for row in rows}
    assert {key for key, loop in loops.items() if loop == {"uvloop"}} == UVLOOP_ROWS | {
        (scenario, "net-relay udp msgpack") for scenario in ("one-way", "rpc", "inflight")}
    assert all(row.baseline == "" for row in rows if row.implementation == "raw uvloop")
    assert [row.baseline for row in rows if row.implementation == "raw asyncio"] == [
        "raw", "", "raw", "raw"]  # 1 msg/datagram, 20 msg/datagram, then both echoes


# -- summing runs up -------------------------------------------------------------------

RAW = Case("one-way", "raw asyncio", "1 msg/datagram", "udp", "msgpack", baseline="raw")
ZMQ = Case("one-way", "pyzmq", "push/pull", "tcp", "msgpack", baseline="pyzmq")
UDP = Case("one-way", "net-relay", "msgpack", "udp", "msgpack")
TCP = Case("one-way", "net-relay", "msgpack", "tcp", "msgpack")
RPC_RAW = Case("rpc", "raw asyncio", "echo", "udp", "msgpack", baseline="raw")
RPC_UDP = Case("rpc", "net-relay", "msgpack", "udp", "msgpack")


def rate(value: float) -> Measurement:
    return Measurement({"received_per_s": value, "loss_pct": 0.0})


def latency(p50: float) -> Measurement:
    return Measurement({"p50_us": p50, "p99_us": 2 * p50})


def test_a_row_reports_the_median_of_its_runs() -> None:
    (row,) = summarize([RAW], [[rate(10.0), rate(30.0), rate(20.0)]], pinned=False)
    assert row.status == "ok" and row.runs_ok == 3
    assert row.metrics["received_per_s"] == 20.0


def test_failed_runs_are_left_out_of_the_median_and_named_in_the_detail() -> None:
    runs = [rate(10.0), Measurement(failure="timeout"), rate(30.0)]
    (row,) = summarize([RAW], [runs], pinned=False)
    assert row.status == "ok" and row.runs_ok == 2
    assert row.metrics["received_per_s"] == 20.0
    assert "run 2: timeout" in row.detail


def test_a_row_with_no_successful_run_has_no_figures() -> None:
    runs = [Measurement(failure="timeout"), Measurement(failure="failed: udp-sink: boom")]
    (row,) = summarize([RAW], [runs], pinned=False)
    assert row.status == "failed" and row.metrics == {}
    assert "boom" in row.detail


def test_ratios_divide_by_the_baselines_of_the_same_scenario() -> None:
    rows = summarize([RAW, ZMQ, UDP, RPC_RAW, RPC_UDP],
                     [[rate(100.0)], [rate(400.0)], [rate(200.0)], [latency(50.0)],
                      [latency(75.0)]], pinned=False)
    by_case = {row.case: row for row in rows}
    assert by_case[UDP].ratios == {"raw": 2.0, "pyzmq": 0.5}
    assert by_case[RPC_UDP].ratios == {"raw": 1.5, "pyzmq": None}
    assert by_case[RAW].ratios["raw"] == 1.0


def test_targets_follow_the_issue_and_loosen_rpc_latency_when_pinned() -> None:
    cases = [RAW, ZMQ, UDP, TCP, RPC_RAW, RPC_UDP]
    runs = [[rate(100.0)], [rate(400.0)], [rate(160.0)], [rate(300.0)], [latency(50.0)],
            [latency(70.0)]]
    loose = {row.case: row for row in summarize(cases, runs, pinned=False)}
    pinned = {row.case: row for row in summarize(cases, runs, pinned=True)}
    assert (loose[UDP].target, loose[UDP].target_met) == (">= 1.5x raw", True)
    assert (loose[TCP].target, loose[TCP].target_met) == (">= 1.0x pyzmq", False)
    assert (loose[RPC_UDP].target, loose[RPC_UDP].target_met) == ("<= 1.3x raw", False)
    assert (pinned[RPC_UDP].target, pinned[RPC_UDP].target_met) == ("<= 1.5x raw", True)
    assert loose[RAW].target == ""


def test_a_skipped_row_keeps_its_reason_and_has_no_ratios() -> None:
    skipped = Case("one-way", "net-relay", "msgpack", "quic", "msgpack", skipped="no certificate")
    rows = summarize([RAW, skipped], [[rate(100.0)], []], pinned=False)
    assert rows[1].status == "skipped" and rows[1].detail == "no certificate"
    assert rows[1].ratios == {"raw": None, "pyzmq": None}


def test_every_worker_sends_a_small_message_of_about_80_bytes() -> None:
    assert 70 <= len(msgpack.packb(sample(123_456))) <= 90
