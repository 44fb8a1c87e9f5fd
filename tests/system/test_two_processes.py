"""Two OS processes over UDP loopback: the `net-relay` command line end to end."""

from __future__ import annotations

import asyncio
import json
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from nodes import WAIT_LIMIT, RawUdp, net_relay_node, run_net_relay, udp_config, wait_for
from relay_core import Node


def node_process(tmp_path: Path, *, codec: str = "msgpack") -> AbstractAsyncContextManager[str]:
    """Run `net-relay node` in a child process; yield its UDP URL; stop it with SIGTERM."""
    config = tmp_path / "beta.toml"
    config.write_text(f'[node]\nname = "beta"\ncodec = "{codec}"\n\n'
                      '[listen.udp]\nhost = "127.0.0.1"\nport = 0\n')
    return net_relay_node("node", "--config", str(config))


async def test_a_node_in_another_process_answers_sends_and_rpcs(tmp_path: Path) -> None:
    async with node_process(tmp_path) as beta, Node(udp_config("alpha")) as alpha:
        for index in range(25):
            await alpha.ref(f"{beta}/counter").send({"n": index})
        await wait_for(lambda: alpha.stats().total["packets_sent"] > 0, "sent")
        assert await alpha.ref(f"{beta}/echo").rpc([1, "two", b"3"], timeout=5.0) == [1, "two", b"3"]
        count = 0
        async with asyncio.timeout(WAIT_LIMIT):
            while count < 25:
                count = await alpha.ref(f"{beta}/counter").rpc("count?", timeout=5.0)  # type: ignore[assignment]
        assert count == 25


async def test_the_cli_sends_and_calls_and_prints_json(tmp_path: Path) -> None:
    async with node_process(tmp_path) as beta:
        sent = await run_net_relay("send", f"{beta}/counter", '{"hello": "world"}')
        assert sent.returncode == 0, sent.stderr
        reply = await run_net_relay("rpc", f"{beta}/echo", '{"name": "ada", "n": [1, 2]}')
        assert reply.returncode == 0, reply.stderr
        assert json.loads(reply.stdout) == {"name": "ada", "n": [1, 2]}
        counted = await run_net_relay("rpc", f"{beta}/counter", "null")
        assert json.loads(counted.stdout) == 1


async def test_a_cli_rpc_to_an_unknown_actor_prints_one_line_and_fails(tmp_path: Path) -> None:
    async with node_process(tmp_path) as beta:
        result = await run_net_relay("rpc", f"{beta}/nobody", "{}")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "UnknownActor" in result.stderr


async def test_a_cli_rpc_that_gets_no_reply_times_out_cleanly(tmp_path: Path) -> None:
    silent = RawUdp()  # takes the request and never answers (a closed port would refuse it)
    try:
        result = await run_net_relay("rpc", f"{silent.url}/echo", "{}", "--timeout", "0.2")
    finally:
        silent.close()
    assert result.returncode == 1
    assert "RpcTimeout" in result.stderr
    assert "Traceback" not in result.stderr


async def test_the_cli_rejects_bad_json_and_bad_addresses_in_one_line() -> None:
    bad_json = await run_net_relay("send", "udp://127.0.0.1:9/echo", "{nope")
    bad_address = await run_net_relay("send", "udp://127.0.0.1/echo", "{}")
    for result in (bad_json, bad_address):
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") == 0
    assert "JSON" in bad_json.stderr
    assert "SCHEME://HOST:PORT" in bad_address.stderr


async def test_plugins_lists_every_built_in_with_its_distribution() -> None:
    result = await run_net_relay("plugins")
    assert result.returncode == 0, result.stderr
    rows = {tuple(line.split()[:3]) for line in result.stdout.splitlines()[1:]}
    for kind, name in [("codec", "msgpack"), ("codec", "cbor"), ("codec", "json"),
                       ("compressor", "zstd"), ("compressor", "none"), ("transport", "udp"),
                       ("transport", "tcp"), ("transport", "quic")]:
        assert (kind, name, "net-relay") in rows, result.stdout
    # the example third-party plugin, installed by the test set-up like any package
    assert ("compressor", "zlib", "net-relay-zlib") in rows, result.stdout


async def test_demo_runs_over_every_transport_and_codec() -> None:
    result = await run_net_relay("demo", "--messages", "50", "--rpcs", "10")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for transport in ("udp", "tcp", "quic"):
        for codec in ("msgpack", "cbor", "json"):
            row = [transport, codec, "50", "50"]
            assert any(line.split()[:4] == row for line in lines), result.stdout


async def test_gen_cert_writes_a_pair_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    cert, key = str(tmp_path / "c.pem"), str(tmp_path / "k.pem")
    made = await run_net_relay("gen-cert", "--cert", cert, "--key", key, "--host", "127.0.0.1")
    again = await run_net_relay("gen-cert", "--cert", cert, "--key", key)
    assert made.returncode == 0, made.stderr
    assert "fingerprint" in made.stdout
    assert (tmp_path / "c.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert again.returncode == 1
    assert "already exist" in again.stderr and "Traceback" not in again.stderr


async def test_stats_asks_a_running_node_for_its_counters(tmp_path: Path) -> None:
    async with node_process(tmp_path) as beta:
        await run_net_relay("send", f"{beta}/counter", "1")
        result = await run_net_relay("stats", beta)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["node"] == "beta"
    assert stats["total"]["messages_received"] >= 1
    assert "packets_received" in stats["total"]
