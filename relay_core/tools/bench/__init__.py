"""``net-relay bench``: net-relay side by side with raw asyncio sockets and pyzmq, in one run.

Three scenarios, each a set of rows: one-way throughput (messages received per
second, and loss), sequential RPC round trips (p50 and p99 latency), and RPC
throughput with many requests in flight (replies per second). A row is one way
of doing the job: a raw asyncio or pyzmq baseline, or net-relay over one
transport with one codec. benchmarks/README.md says how to read the report.

The package's parts, each with its own rules: :mod:`._settings` (what to run),
:mod:`._cases` (the rows), :mod:`._runner` (two child processes per run,
bounded and always cleaned up), :mod:`._scenarios` (what a run's results
mean), :mod:`._report` (medians, ratios, targets, table and JSON),
:mod:`._command` (the whole bench) and :mod:`._workers` (the child processes).
"""

from __future__ import annotations

from ._cases import Case
from ._command import run_bench, run_command
from ._report import BenchReport, Row, render_json, render_table, summarize
from ._runner import Measurement
from ._settings import BenchSettings, add_arguments, settings_from_args

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
    "summarize",
]
