"""Prometheus metrics: a node's counters, served at /metrics by an exporter of its own."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import socket
import sys
import threading
import types
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes import udp_config, wait_for
from relay_core import ActorContext, ConfigError, Node, NodeStats, TransportError
from relay_core.faults.adapter import FAULT_COUNTERS
from relay_core.observe import metrics as _metrics
from relay_core.observe.metrics import MetricsExporter, metrics_available
from relay_core.observe.stats import COUNTER_NAMES, StatsTable

needs_prometheus = pytest.mark.skipif(
    not metrics_available(), reason="prometheus-client is not installed (net-relay[metrics])")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def parse(text: str) -> Samples:
    """Every sample in an exposition: (sample name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


def get(url: str, accept: str = "") -> tuple[int, str, str]:
    """(status, content type, body) of a GET, error statuses included."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read().decode()


async def scrape(bound: tuple[str, int], path: str = "/metrics") -> Samples:
    status, _, body = await asyncio.to_thread(get, f"http://{bound[0]}:{bound[1]}{path}")
    assert status == 200, body
    return parse(body)


async def exchange(bound: tuple[str, int], request: bytes) -> bytes:
    """Send raw bytes to the exporter; return everything it answers before closing."""
    reader, writer = await asyncio.open_connection(*bound)
    writer.write(request)
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def ended(reader: asyncio.StreamReader) -> bool:
    """True once the other side has closed: with a FIN, or with a reset if it left bytes unread."""
    try:
        return await reader.read() == b""
    except ConnectionResetError:
        return True


def exporter_over(table: StatsTable, node: str = "alpha",
                  faults: dict[str, dict[str, int]] | None = None,
                  senders: int = 0) -> MetricsExporter:
    return MetricsExporter(lambda: table.snapshot(faults, senders), node, port=0)


# -- what a scrape shows ----------------------------------------------------


@needs_prometheus
async def test_a_scrape_shows_every_counter_of_every_peer_labelled_with_node_and_peer() -> None:
    table = StatsTable()
    table.peer("beta").messages_sent = 7
    exporter = exporter_over(table)
    try:
        samples = await scrape(await exporter.start())
    finally:
        await exporter.close()
    for name in COUNTER_NAMES:
        for peer in ("beta", "(local)"):
            expected = 7 if (name, peer) == ("messages_sent", "beta") else 0
            assert sample(samples, f"net_relay_{name}_total", node="alpha", peer=peer) == expected


@needs_prometheus
async def test_counters_move_between_two_scrapes() -> None:
    table = StatsTable()
    table.peer("beta")
    exporter = exporter_over(table)
    try:
        bound = await exporter.start()
        before = await scrape(bound)
        table.peer("beta").bytes_received += 1500
        table.peer("udp://127.0.0.1:9002").duplicates += 2
        after = await scrape(bound)
    finally:
        await exporter.close()
    assert sample(before, "net_relay_bytes_received_total", node="alpha", peer="beta") == 0
    assert sample(after, "net_relay_bytes_received_total", node="alpha", peer="beta") == 1500
    assert ("net_relay_duplicates_total",
            frozenset({("node", "alpha"), ("peer", "udp://127.0.0.1:9002")})) not in before
    assert sample(after, "net_relay_duplicates_total", node="alpha",
                  peer="udp://127.0.0.1:9002") == 2


@needs_prometheus
async def test_the_duplicate_window_size_is_a_gauge_per_node() -> None:
    exporter = exporter_over(StatsTable(), senders=42)
    try:
        bound = await exporter.start()
        _, _, body = await asyncio.to_thread(get, f"http://{bound[0]}:{bound[1]}/metrics")
    finally:
        await exporter.close()
    assert "# TYPE net_relay_duplicate_window_senders gauge" in body
    assert sample(parse(body), "net_relay_duplicate_window_senders", node="alpha") == 42


@needs_prometheus
async def test_fault_adapter_figures_appear_per_scheme_counters_and_gauges_apart() -> None:
    faults = {"udp": {"dropped": 3, "duplicated": 1, "in_flight": 2, "peak_in_flight": 5},
              "tcp": {"dropped": 0, "duplicated": 4, "in_flight": 0, "peak_in_flight": 1}}
    exporter = exporter_over(StatsTable(), faults=faults)
    try:
        bound = await exporter.start()
        _, _, body = await asyncio.to_thread(get, f"http://{bound[0]}:{bound[1]}/metrics")
    finally:
        await exporter.close()
    samples = parse(body)
    assert sample(samples, "net_relay_fault_dropped_total", node="alpha", scheme="udp") == 3
    assert sample(samples, "net_relay_fault_duplicated_total", node="alpha", scheme="tcp") == 4
    assert sample(samples, "net_relay_fault_in_flight", node="alpha", scheme="udp") == 2
    assert sample(samples, "net_relay_fault_peak_in_flight", node="alpha", scheme="tcp") == 1
    assert "# TYPE net_relay_fault_dropped_total counter" in body
    assert "# TYPE net_relay_fault_in_flight gauge" in body


@needs_prometheus
def test_without_fault_adapters_there_are_no_fault_metrics() -> None:
    from prometheus_client import generate_latest
    text = generate_latest(exporter_over(StatsTable()).registry).decode()
    assert "net_relay_fault_" not in text


@needs_prometheus
@given(
    node=st.text(),
    peers=st.dictionaries(
        st.text(), st.fixed_dictionaries({name: st.integers(0, 2**53) for name in COUNTER_NAMES}),
        max_size=5),
)
def test_any_node_name_peer_label_and_counter_value_survive_the_exposition_format(
        node: str, peers: dict[str, dict[str, int]]) -> None:
    from prometheus_client import generate_latest
    stats = NodeStats(total={}, peers=peers)
    samples = parse(generate_latest(MetricsExporter(lambda: stats, node, port=0).registry).decode())
    assert len(samples) == len(peers) * len(COUNTER_NAMES) + 1  # + the senders gauge
    for peer, counters in peers.items():
        for name, value in counters.items():
            assert sample(samples, f"net_relay_{name}_total", node=node, peer=peer) == value


@needs_prometheus
async def test_a_live_node_is_scraped_with_the_messages_it_received() -> None:
    async with Node(udp_config("alpha")) as alpha, Node(udp_config("beta")) as beta:
        received: list[object] = []

        async def sink(ctx: ActorContext) -> None:
            async for message in ctx:
                received.append(message)

        beta.spawn(sink, name="sink")
        exporter = MetricsExporter(beta.stats, beta.name, port=0)
        try:
            bound = await exporter.start()
            for n in range(3):
                await alpha.ref(f"{beta.address('udp')}/sink").send(n)
            await wait_for(lambda: len(received) == 3, "three messages at beta")
            samples = await scrape(bound)
        finally:
            await exporter.close()
    counted = sum(value for (name, labels), value in samples.items()
                  if name == "net_relay_messages_received_total" and ("node", "beta") in labels)
    assert counted == 3


@needs_prometheus
async def test_stats_are_read_on_the_event_loop_thread_once_per_scrape() -> None:
    table = StatsTable()
    readers: list[int] = []

    def stats() -> NodeStats:
        readers.append(threading.get_ident())
        return table.snapshot()

    exporter = MetricsExporter(stats, "alpha", port=0)
    try:
        bound = await exporter.start()
        await scrape(bound)
        await scrape(bound)
    finally:
        await exporter.close()
    assert readers == [threading.get_ident()] * 2


def test_every_counter_has_its_own_help_text() -> None:
    assert set(_metrics._HELP) == set(COUNTER_NAMES)
    assert set(_metrics._FAULT_HELP) == {*FAULT_COUNTERS, "in_flight", "peak_in_flight"}


def test_the_observability_guide_names_every_metric() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "observability.md").read_text()
    names = [f"net_relay_{name}_total" for name in COUNTER_NAMES]
    names += [f"net_relay_fault_{name}_total" for name in FAULT_COUNTERS]
    names += ["net_relay_duplicate_window_senders", "net_relay_fault_in_flight",
              "net_relay_fault_peak_in_flight"]
    assert [name for name in names if f"`{name}`" not in guide] == []


# -- the HTTP endpoint ------------------------------------------------------


@needs_prometheus
async def test_openmetrics_is_served_to_a_scraper_that_asks_for_it() -> None:
    exporter = exporter_over(StatsTable())
    try:
        host, port = await exporter.start()
        status, content_type, body = await asyncio.to_thread(
            get, f"http://{host}:{port}/metrics", OPENMETRICS)
    finally:
        await exporter.close()
    assert status == 200
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")


@needs_prometheus
async def test_the_plain_text_format_is_the_default() -> None:
    exporter = exporter_over(StatsTable())
    try:
        host, port = await exporter.start()
        status, content_type, _ = await asyncio.to_thread(get, f"http://{host}:{port}/metrics")
    finally:
        await exporter.close()
    assert (status, content_type.split(";")[0]) == (200, "text/plain")


@needs_prometheus
@pytest.mark.parametrize(("request_bytes", "status", "says"), [
    (b"GET / HTTP/1.1\r\n\r\n", b"404", b"/metrics"),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"405", b"only GET"),
    (b"hello\r\n\r\n", b"400", b"HTTP/1.x request line"),
    (b"GET /" + b"x" * 10_000 + b" HTTP/1.1\r\n\r\n", b"400", b"longer than"),
    (b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 100 + b"\r\n", b"400", b"header lines"),
])
async def test_a_request_other_than_get_metrics_gets_an_error_that_says_what_is_served(
        request_bytes: bytes, status: bytes, says: bytes) -> None:
    exporter = exporter_over(StatsTable())
    try:
        answer = await exchange(await exporter.start(), request_bytes)
    finally:
        await exporter.close()
    assert answer.split(b" ", 2)[1] == status
    assert says in answer


@needs_prometheus
async def test_a_failing_stats_callable_costs_one_scrape_not_the_endpoint(
        caplog: pytest.LogCaptureFixture) -> None:
    table = StatsTable()
    failures = [RuntimeError("stats are broken")]

    def stats() -> NodeStats:
        if failures:
            raise failures.pop()
        return table.snapshot()

    exporter = MetricsExporter(stats, "alpha", port=0)
    try:
        host, port = await exporter.start()
        broken = await asyncio.to_thread(get, f"http://{host}:{port}/metrics")
        healthy = await scrape((host, port))
    finally:
        await exporter.close()
    assert broken[0] == 500
    assert "stats are broken" in caplog.text
    assert sample(healthy, "net_relay_messages_sent_total", node="alpha", peer="(local)") == 0


# -- lifecycle ----------------------------------------------------------------


@needs_prometheus
async def test_port_zero_binds_a_free_loopback_port_and_start_returns_it() -> None:
    exporter = exporter_over(StatsTable())
    try:
        host, port = await exporter.start()
        assert await exporter.start() == (host, port)
    finally:
        await exporter.close()
    assert host == "127.0.0.1"
    assert port > 0


@needs_prometheus
async def test_an_ipv6_loopback_exporter_serves_too() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    exporter = MetricsExporter(StatsTable().snapshot, "alpha", host="::1", port=0)
    try:
        host, port = await exporter.start()
        answer = await exchange((host, port), b"GET /metrics HTTP/1.1\r\n\r\n")
    finally:
        await exporter.close()
    assert host == "::1"
    assert answer.startswith(b"HTTP/1.1 200 OK")


@needs_prometheus
async def test_close_frees_the_port_for_another_exporter() -> None:
    first = exporter_over(StatsTable(), node="first")
    _, port = await first.start()
    await first.close()
    await first.close()  # closing twice changes nothing
    second = MetricsExporter(StatsTable().snapshot, "second", port=port)
    try:
        samples = await scrape(await second.start())
    finally:
        await second.close()
    assert all(("node", "second") in labels for _, labels in samples)


@needs_prometheus
async def test_close_ends_a_connection_that_never_sent_its_request() -> None:
    exporter = exporter_over(StatsTable())
    reader, writer = await asyncio.open_connection(*await exporter.start())
    writer.write(b"GET /metrics HTTP/1.1\r\n")  # and never the blank line
    await writer.drain()
    await wait_for(lambda: bool(exporter._connections), "the exporter to take the connection")
    await exporter.close()
    assert await ended(reader)
    writer.close()
    with contextlib.suppress(ConnectionResetError):
        await writer.wait_closed()


@needs_prometheus
async def test_connections_past_the_limit_are_closed_at_once() -> None:
    exporter = exporter_over(StatsTable())
    bound = await exporter.start()
    idle = [await asyncio.open_connection(*bound) for _ in range(_metrics._MAX_CONNECTIONS)]
    try:
        await wait_for(lambda: len(exporter._connections) == _metrics._MAX_CONNECTIONS,
                       "the exporter to take every idle connection")
        reader, writer = await asyncio.open_connection(*bound)
        assert await ended(reader)
        writer.close()
    finally:
        await exporter.close()
        for _, idle_writer in idle:
            idle_writer.close()


@needs_prometheus
async def test_a_port_already_taken_is_a_transport_error_naming_it() -> None:
    first = exporter_over(StatsTable())
    _, port = await first.start()
    try:
        with pytest.raises(TransportError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await MetricsExporter(StatsTable().snapshot, "second", port=port).start()
    finally:
        await first.close()


@needs_prometheus
async def test_two_exporters_in_one_process_serve_their_own_node_only() -> None:
    alpha_table, beta_table = StatsTable(), StatsTable()
    alpha_table.peer("x").messages_sent = 1
    beta_table.peer("x").messages_sent = 2
    alpha, beta = exporter_over(alpha_table, "alpha"), exporter_over(beta_table, "beta")
    try:
        alpha_samples = await scrape(await alpha.start())
        beta_samples = await scrape(await beta.start())
    finally:
        await alpha.close()
        await beta.close()
    assert sample(alpha_samples, "net_relay_messages_sent_total", node="alpha", peer="x") == 1
    assert sample(beta_samples, "net_relay_messages_sent_total", node="beta", peer="x") == 2
    assert all(("node", "beta") not in labels for _, labels in alpha_samples)


@needs_prometheus
@pytest.mark.parametrize("port", [-1, 65536, True, "9464", 1.5])
def test_a_port_outside_0_to_65535_is_a_config_error(port: object) -> None:
    with pytest.raises(ConfigError, match="must be an integer from 0 to 65535"):
        MetricsExporter(StatsTable().snapshot, "alpha", port=port)  # type: ignore[arg-type]


# -- without the extra --------------------------------------------------------


def load_without_prometheus(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A fresh copy of relay_core.observe.metrics, loaded as if prometheus_client were missing."""
    for name in [name for name in sys.modules if name.split(".")[0] == "prometheus_client"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # makes its import fail
    path = Path(__file__).resolve().parents[2] / "relay_core" / "observe" / "metrics.py"
    spec = importlib.util.spec_from_file_location("relay_core.observe._metrics_without_extra", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_prometheus_client_the_exporter_says_which_extra_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    module = load_without_prometheus(monkeypatch)
    assert module.metrics_available() is False
    with pytest.raises(ConfigError, match=r"install net-relay\[metrics\]"):
        module.MetricsExporter(StatsTable().snapshot, "alpha")


async def test_a_node_serves_its_counters_and_a_scrape_sees_them_move() -> None:
    import dataclasses
    import urllib.request

    from nodes import udp_config
    from relay_core import Node
    from relay_core.tools.demo import echo

    if not metrics_available():
        pytest.skip("prometheus-client is not installed (net-relay[metrics])")

    def scrape(url: str) -> dict[str, float]:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("net_relay_messages_received_total{"):
                values[line.split("}")[0]] = float(line.rsplit(" ", 1)[1])
        return values

    config = dataclasses.replace(udp_config("scraped"), metrics_port=0)
    async with Node(config) as node, Node(udp_config("caller")) as caller:
        node.spawn(echo, name="echo")
        url = node.metrics_address
        assert url is not None and url.endswith("/metrics")
        await caller.ref(f"{node.address('udp')}/echo").rpc("one", timeout=5.0)
        before = sum((await asyncio.to_thread(scrape, url)).values())
        for _ in range(3):
            await caller.ref(f"{node.address('udp')}/echo").rpc("more", timeout=5.0)
        after = sum((await asyncio.to_thread(scrape, url)).values())
    assert before >= 1
    assert after == before + 3
