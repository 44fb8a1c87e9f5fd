"""`net-relay bench --growth`: how cost grows with peers, message size and compression.

The command-line tests run the real growth bench on udp with tiny counts. They
check the shape of the report and figures that do not depend on the machine
(bytes on the wire, counts), never a rate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay_core.errors import ConfigError
from relay_core.tools.bench import BenchSettings
from relay_core.tools.bench._growth import GrowthCase, GrowthReport, GrowthRow, GrowthSettings
from relay_core.tools.bench._growth._cases import _count, _shares
from relay_core.tools.bench._growth._report import TABLES, compared, render_growth_table
from relay_core.tools.bench._workers._payloads import KINDS, POOL, TRAINING_FIRST, pool

BENCH = [sys.executable, "-m", "relay_core.tools.cli", "bench", "--growth"]
TINY = ["--quick", "--transports", "udp", "--messages", "200", "--peers", "1,3",
        "--idle-peers", "4", "--volume", "1", "--runs", "1"]
BENCH_LIMIT = 300.0
"""Seconds a whole tiny growth bench may take on a busy machine before the test fails."""


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BENCH, *args], capture_output=True, text=True,
                          timeout=BENCH_LIMIT, check=False)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    result = bench(*TINY, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def rows_of(report: dict[str, Any], table: str) -> dict[str, dict[str, Any]]:
    return {row["label"]: row for row in report["rows"] if row["table"] == table}


# -- the command line ------------------------------------------------------------------


@pytest.mark.slow
def test_every_row_of_the_four_tables_runs_and_says_what_it_measured(
    report: dict[str, Any],
) -> None:
    assert report["kind"] == "growth"
    assert report["settings"]["peers"] == [1, 3] and report["settings"]["idle_peers"] == 4
    assert {row["table"] for row in report["rows"]} == set(TABLES)
    assert all(row["status"] == "ok" and row["runs_ok"] == 1 for row in report["rows"]), report
    assert {"python", "cpus", "load_before", "load_after"} <= set(report["environment"])


@pytest.mark.slow
def test_peer_rows_spread_distinct_sender_nodes_over_processes(report: dict[str, Any]) -> None:
    rows = rows_of(report, "peers")
    assert set(rows) == {"udp 1 peer", "udp 3 peers"}
    assert rows["udp 3 peers"]["facts"] == {"peers": 3, "processes": 3}
    assert rows["udp 1 peer"]["metrics"]["sent"] == 200
    assert rows["udp 3 peers"]["metrics"]["sent"] == 3 * 66  # the same share for every peer
    assert all(0 < row["metrics"]["received"] <= row["metrics"]["sent"] for row in rows.values())


@pytest.mark.slow
def test_memory_is_reported_per_idle_peer_by_resident_set_and_by_tracemalloc(
    report: dict[str, Any],
) -> None:
    rows = rows_of(report, "memory")
    assert set(rows) == {"udp 4 idle peers, rss", "udp 4 idle peers, tracemalloc"}
    for row in rows.values():
        metrics = row["metrics"]
        assert metrics["lost"] == 0
        assert metrics["per_peer"] == metrics["config_per_peer"] + metrics["state_per_peer"]
    assert rows["udp 4 idle peers, tracemalloc"]["metrics"]["state_per_peer"] > 0


@pytest.mark.slow
def test_the_size_sweep_stops_at_one_datagram_on_udp_and_bounds_each_rows_volume(
    report: dict[str, Any],
) -> None:
    rows = rows_of(report, "sizes")
    assert list(rows) == ["udp 64 B", "udp 1 KiB", "udp 8 KiB", "udp 60 KiB"]
    assert [row["metrics"]["sent"] for row in rows.values()] == [200, 200, 122, 16]
    small = rows["udp 64 B"]["metrics"]["payload_bytes_per_msg"]
    assert 64 < small < 70  # the bytes plus msgpack's length prefix


@pytest.mark.slow
def test_a_trained_dictionary_shrinks_small_messages_that_plain_zstd_sends_as_they_are(
    report: dict[str, Any],
) -> None:
    wire = {label: row["metrics"]["wire_bytes_per_msg"]
            for label, row in rows_of(report, "compression").items()}
    none, plain = wire["udp ~160 B event, none"], wire["udp ~160 B event, zstd"]
    assert plain == none  # zstd would make it larger, so the frame goes uncompressed
    assert wire["udp ~160 B event, zstd + dictionary"] < 0.7 * none
    assert wire["udp ~4 KiB log lines, zstd"] < 0.5 * wire["udp ~4 KiB log lines, none"]
    random_rows = [value for label, value in wire.items() if "random" in label]
    assert len(set(random_rows)) == 1  # incompressible: never sent compressed


@pytest.mark.slow
def test_the_tables_print_every_kind_of_growth_and_progress_goes_to_stderr() -> None:
    result = bench(*TINY, "--idle-peers", "2", "--peers", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    for table in TABLES.values():
        assert table.title in result.stdout
    assert "run 1/1  compression" in result.stderr and "run 1/1" not in result.stdout


def test_a_run_that_overruns_its_time_limit_is_killed_and_reported_as_timeout() -> None:
    result = bench(*TINY, "--time-limit", "0.01", "--json")
    assert result.returncode == 1
    rows = json.loads(result.stdout)["rows"]
    assert rows and all(row["status"] == "timeout" and row["metrics"] == {} for row in rows)


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--peers", "0"], "--peers 0 is not allowed: a whole number from 1 to 1000"),
        (["--peers", "1,ten"], "expected whole numbers separated by commas"),
        (["--idle-peers", "1"], "--idle-peers 1 is not allowed"),
        (["--volume", "0"], "--volume 0 is not allowed"),
        (["--rpcs", "5"], "--rpcs is not an option of --growth"),
        (["--codecs", "msgpack,cbor"], "name one codec"),
        (["--runs", "0"], "--runs 0 is not allowed"),
    ],
)
def test_bad_growth_options_are_refused_in_one_line_before_anything_runs(
    args: list[str], complaint: str
) -> None:
    result = bench(*args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and complaint in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_growth_options_without_growth_are_refused() -> None:
    result = subprocess.run([*BENCH[:-1], "--peers", "10"], capture_output=True, text=True,
                            timeout=BENCH_LIMIT, check=False)
    assert result.returncode == 1 and "--peers needs --growth" in result.stderr


# -- how rows are made and summed up ---------------------------------------------------


@given(st.integers(0, 10_000), st.integers(1, 100))
def test_peers_are_shared_out_as_evenly_as_whole_numbers_allow(total: int, parts: int) -> None:
    shares = _shares(total, parts)
    assert len(shares) == parts and sum(shares) == total
    assert max(shares) - min(shares) <= 1


@given(st.integers(1, 10_000_000), st.integers(1, 200), st.integers(1, 1_000_000))
def test_a_row_sends_its_messages_but_never_much_more_than_its_volume(
    size: int, volume: int, messages: int
) -> None:
    settings = GrowthSettings(BenchSettings(messages=messages), volume=volume)
    count = _count(settings, size)
    assert 3 <= count <= max(3, messages)
    assert count <= 3 or count * size <= volume * 1_000_000


def test_settings_refuse_more_than_one_codec_in_code_too() -> None:
    with pytest.raises(ConfigError, match="name one codec"):
        GrowthSettings(BenchSettings(codecs=("msgpack", "json")))


@pytest.mark.parametrize("value", [True, 2.0, "8", 1001])
def test_settings_refuse_idle_peers_that_are_not_a_whole_number_in_range(value: object) -> None:
    with pytest.raises(ConfigError, match="--idle-peers .* is not allowed: a whole number"):
        GrowthSettings(BenchSettings(), idle_peers=value)  # type: ignore[arg-type]


def row(label: str, group: str, wire: float) -> GrowthRow:
    case = GrowthCase("compression", label, group=group)
    return GrowthRow(case, "ok", "", 1, {"wire_bytes_per_msg": wire})


def test_compression_rows_compare_their_wire_bytes_with_their_groups_first_row() -> None:
    rows = compared([row("a none", "a", 200.0), row("a dict", "a", 50.0),
                      row("b none", "b", 1000.0), row("b zstd", "b", 250.0)])
    assert [r.metrics["wire_vs_first"] for r in rows] == [1.0, 0.25, 1.0, 0.25]


def test_the_table_shows_skipped_and_failed_rows_with_their_reasons() -> None:
    rows = (GrowthRow(GrowthCase("sizes", "quic 1 MiB", skipped="no certificate"), "skipped",
                      "no certificate", 0, {}),
            GrowthRow(GrowthCase("sizes", "tcp 1 MiB", facts={"size": 1 << 20}), "timeout",
                      "run 1: timeout", 0, {}))
    text = render_growth_table(GrowthReport(GrowthSettings(BenchSettings()), rows, {}))
    assert TABLES["sizes"].title in text and TABLES["peers"].title not in text
    assert "skipped: no certificate" in text and "run 1: timeout" in text


# -- the messages ----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "low", "high"),
                         [("event", 140, 180), ("records", 3800, 4400), ("random", 4096, 4100)])
def test_payload_kinds_have_the_sizes_their_rows_name(kind: str, low: int, high: int) -> None:
    sizes = [len(msgpack.packb(message)) for message in pool(kind, 4096, 50)]
    assert all(low <= size <= high for size in sizes), sizes


@pytest.mark.parametrize("kind", ["event", "records", "random"])
def test_dictionaries_are_trained_on_messages_senders_never_send(kind: str) -> None:
    sent = {msgpack.packb(message) for message in pool(kind, 4096)}
    trained = {msgpack.packb(message) for message in pool(kind, 4096, 50, TRAINING_FIRST)}
    assert len(sent) == POOL and not sent & trained


def test_an_unknown_payload_kind_is_refused_with_the_kinds() -> None:
    with pytest.raises(ValueError, match=", ".join(KINDS)):
        pool("gibberish", 10)


def test_the_bytes_payload_is_one_block_of_the_size_asked() -> None:
    (block,) = pool("bytes", 10_000)
    assert isinstance(block, bytes) and len(block) == 10_000
