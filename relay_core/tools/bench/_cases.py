"""The rows of a bench: for each scenario, the baselines and every net-relay pair.

A :class:`Case` names the worker role and arguments for each side. Rows that
cannot run here stay in the list, ``skipped`` with the reason: a transport or
codec that is not installed, pyzmq missing, or no certificate for quic.

Every asyncio worker is told its event loop. net-relay rows run on the loop
net-relay would choose (``BenchSettings.relay_loop``); the raw baseline rows
always run on the stock asyncio loop, as the issue defines them. When the
net-relay rows run on uvloop, raw rows on uvloop join them, for information
only (never a baseline), so the loop's own share of a gain can be read off.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from relay_core.errors import RelayError
from relay_core.plugins.registry import PluginRegistry

from ._settings import BenchSettings

__all__ = ["ZMQ_MISSING", "Case", "cases"]

ZMQ_MISSING = "pyzmq is not installed (pip install 'net-relay[bench]')"


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


def cases(settings: BenchSettings, workdir: Path) -> list[Case]:
    """Every row, scenario by scenario; quic's certificate is written to ``workdir``."""
    relay = _relay_setups(settings, workdir)
    return [*_one_way(settings, relay), *_rpc(settings, relay), *_inflight(settings, relay)]


def _one_way(settings: BenchSettings, relay: Sequence[_RelaySetup]) -> list[Case]:
    count = ("--messages", str(settings.messages))
    rows = []
    if "raw" in settings.baselines:
        informative = [(loop, 1) for loop in _raw_loops(settings)[1:]]
        for loop, batch in [("asyncio", 1), ("asyncio", 20), *informative]:
            source = ("udp-source", *count, "--batch", str(batch))
            rows.append(_raw("one-way", f"{batch} msg/datagram", ("udp-sink",), source, loop,
                             "raw" if batch == 1 else ""))
    if "pyzmq" in settings.baselines:
        rows.append(Case("one-way", "pyzmq", "push/pull", "tcp", "msgpack", ("zmq-pull",),
                         ("zmq-push", *count), "pyzmq", _zmq_missing()))
    return rows + [
        Case("one-way", "net-relay", r.codec, r.transport, r.codec, ("relay-sink", *r.arguments),
             ("relay-source", *r.arguments, *count), skipped=r.skipped)
        for r in relay
    ]


def _rpc(settings: BenchSettings, relay: Sequence[_RelaySetup]) -> list[Case]:
    calls = ("--rpcs", str(settings.rpcs), "--warmup", str(settings.warmup))
    rows = []
    if "raw" in settings.baselines:
        rows += [_raw("rpc", "echo", ("udp-echo",), ("udp-call", *calls), loop, "raw")
                 for loop in _raw_loops(settings)]
    if "pyzmq" in settings.baselines:
        rows.append(Case("rpc", "pyzmq", "req/rep", "tcp", "msgpack", ("zmq-rep",),
                         ("zmq-req", *calls), "pyzmq", _zmq_missing()))
    return rows + [
        Case("rpc", "net-relay", r.codec, r.transport, r.codec, ("relay-echo", *r.arguments),
             ("relay-call", *r.arguments, *calls), skipped=r.skipped)
        for r in relay
    ]


def _inflight(settings: BenchSettings, relay: Sequence[_RelaySetup]) -> list[Case]:
    calls = ("--rpcs", str(settings.inflight_rpcs), "--inflight", str(settings.inflight),
             "--warmup", str(settings.warmup))
    rows = []
    if "raw" in settings.baselines:
        rows += [_raw("inflight", "echo", ("udp-echo",), ("udp-call", *calls), loop, "raw")
                 for loop in _raw_loops(settings)]
    return rows + [
        Case("inflight", "net-relay", r.codec, r.transport, r.codec, ("relay-echo", *r.arguments),
             ("relay-call", *r.arguments, *calls), skipped=r.skipped)
        for r in relay
    ]


def _raw_loops(settings: BenchSettings) -> tuple[str, ...]:
    """The stock loop of the baseline, then uvloop when the net-relay rows run on it."""
    return ("asyncio", "uvloop") if settings.relay_loop == "uvloop" else ("asyncio",)


def _raw(scenario: str, variant: str, server: tuple[str, ...], client: tuple[str, ...],
         loop: str, baseline: str = "") -> Case:
    """A raw UDP row on ``loop``; only a stock-asyncio row can be the baseline."""
    on_loop = ("--loop", loop)
    return Case(scenario, f"raw {loop}", variant, "udp", "msgpack", (*server, *on_loop),
                (*client, *on_loop), baseline if loop == "asyncio" else "")


def _zmq_missing() -> str:
    return "" if importlib.util.find_spec("zmq") else ZMQ_MISSING


def _relay_setups(settings: BenchSettings, workdir: Path) -> list[_RelaySetup]:
    """Every selected (transport, codec) pair, skipped with a reason where it cannot run."""
    registry = PluginRegistry.load()
    transports = settings.transports
    if transports is None:
        transports = tuple(registry.transport_schemes())
    problems = {name: _missing(registry.transport_class, name) for name in transports}
    problems |= {name: _missing(registry.codec, name) for name in settings.codecs}
    tls: tuple[str, ...] = ()
    loop = ("--loop", settings.relay_loop)
    if "quic" in transports and not problems["quic"]:
        tls, problems["quic"] = _quic_files(workdir)
    return [
        _RelaySetup(transport, codec, ("--transport", transport, "--codec", codec, *tls, *loop),
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
        # relay_core does not depend on relay_transports; the bench only borrows its helper.
        certs = importlib.import_module("relay_transports._certs")
        certs.generate_self_signed(cert, key)
    except (ImportError, AttributeError, RelayError) as exc:
        return (), f"cannot make a certificate for quic: {type(exc).__name__}: {exc}"
    return ("--cert", str(cert), "--key", str(key)), ""
