"""``net-relay bench --growth``: how cost grows with peers, message size and compression.

Four tables, each a list of rows, each row one or more runs of worker
processes (:mod:`.._workers._growth`), summed up as medians:

- ``peers``: messages/s one node receives from 1, 10, 100... sender nodes,
  spread over at most four processes.
- ``memory``: bytes per idle peer in a node that exchanged one RPC with each
  of ``--idle-peers`` nodes: once by resident set, once by tracemalloc.
- ``sizes``: one-way messages/s and MB/s from 64 B to 60 KiB, and to 10 MiB
  on stream transports; each row moves at most ``--volume`` MB.
- ``compression``: bytes on the wire per message and messages/s for three
  payloads, without compression, with zstd, and with zstd and a dictionary
  trained on samples of the same shape.

The parts: :mod:`._settings` (what to run), :mod:`._cases` (the rows),
:mod:`._run` (the worker processes of a run, and the whole bench) and
:mod:`._report` (medians, comparisons, tables and JSON).
"""

from __future__ import annotations

from ._cases import GrowthCase, growth_cases
from ._report import GrowthReport, GrowthRow, render_growth_json, render_growth_table
from ._run import run_growth, run_growth_command
from ._settings import GrowthSettings, growth_settings_from_args

__all__ = [
    "GrowthCase",
    "GrowthReport",
    "GrowthRow",
    "GrowthSettings",
    "growth_cases",
    "growth_settings_from_args",
    "render_growth_json",
    "render_growth_table",
    "run_growth",
    "run_growth_command",
]
