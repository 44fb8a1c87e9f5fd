"""What :meth:`relay_core.Node.stats` returns: a snapshot of the node's counters.

Kept apart from the counters themselves (relay_core.observe.stats, compiled):
users read this one with ``help()``, and it is made once per question, never
per message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["NodeStats"]


@dataclass(frozen=True, slots=True)
class NodeStats:
    """A snapshot: totals over all peers, the counters of each peer, and node-wide state."""

    total: dict[str, int]
    peers: dict[str, dict[str, int]] = field(default_factory=dict)
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    """What each fault adapter did, by transport scheme (only where faults are configured)."""
    senders: int = 0
    """Sender incarnations the duplicate window remembers now (bounded by max_senders)."""
    receive_drops: dict[str, int] = field(default_factory=dict)
    """Packets the operating system dropped at a full receive buffer before the node could
    read them, by transport scheme (udp on Linux; a packet may have carried several messages)."""
