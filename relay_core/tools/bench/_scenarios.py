"""The three scenarios: what the two results of one run mean, and which figure leads.

Each scenario turns a server's and a client's result (JSON objects from the
workers) into named metrics, or raises :class:`RunFailed` when the run
measured nothing worth a number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SCENARIOS", "Result", "RunFailed", "Scenario"]

Result = Mapping[str, Any]


class RunFailed(Exception):
    """One run of one row produced no result; the message says why."""


def _one_way(server: Result, client: Result) -> dict[str, float]:
    sent, received, window = client["sent"], server["received"], server["window"]
    if received < 2 or not window > 0:
        raise RunFailed(f"{received} of {sent} messages arrived: too few to time")
    metrics = {"sent": sent, "received": received, "received_per_s": received / window,
               "loss_pct": 100 * (sent - received) / sent}
    if server.get("mailbox_full"):
        metrics["mailbox_full"] = server["mailbox_full"]
    return metrics


def _round_trips(server: Result, client: Result) -> dict[str, float]:
    if not client["completed"]:
        raise RunFailed(f"no reply to any of {client['lost']} requests")
    return {key: client[key] for key in ("completed", "lost", "p50_us", "p99_us")}


def _throughput(server: Result, client: Result) -> dict[str, float]:
    if not client["completed"]:
        raise RunFailed(f"no reply to any of {client['lost']} requests")
    rate = client["completed"] / client["seconds"]
    return {"completed": client["completed"], "lost": client["lost"], "replies_per_s": rate}


@dataclass(frozen=True, slots=True)
class Scenario:
    title: str
    headline: str
    """The metric ratios and targets use: the row's value divided by the baseline's."""
    unit: str
    combine: Callable[[Result, Result], dict[str, float]]
    """(server result, client result) -> metrics."""
    columns: tuple[tuple[str, str], ...]
    """(heading, metric) pairs shown in the table."""


SCENARIOS: Mapping[str, Scenario] = {
    "one-way": Scenario(
        "one-way throughput: messages/s received (higher is better)", "received_per_s", "msg/s",
        _one_way, (("sent", "sent"), ("received", "received"), ("msg/s", "received_per_s"),
                   ("loss %", "loss_pct"))),
    "rpc": Scenario(
        "RPC round trip, one at a time: latency in microseconds (lower is better)", "p50_us",
        "us p50", _round_trips, (("rpcs", "completed"), ("lost", "lost"), ("p50 us", "p50_us"),
                                 ("p99 us", "p99_us"))),
    "inflight": Scenario(
        "RPC throughput with requests in flight: replies/s (higher is better)", "replies_per_s",
        "replies/s", _throughput, (("replies", "completed"), ("lost", "lost"),
                                   ("replies/s", "replies_per_s"))),
}
