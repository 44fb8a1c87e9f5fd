"""What the connections of one stream transport (``tcp``, ``quic``) hold of unfinished packets.

A stream carries packets after their length; a connection holds the part of a
packet that has arrived until the rest does. One connection holds at most one
unfinished packet (at most ``max_packet_size``), but every connection may hold
one: without a shared bound, ``max_connections`` clients that each send most
of a large packet and stop would make the node hold that many packets.
"""

from __future__ import annotations

__all__ = ["InputBudget"]


class InputBudget:
    """The bytes of unfinished packets that every connection of a transport holds, together.

    Each connection charges what it holds after every chunk it reads, and gives
    it back when it goes; a connection whose charge grows past :attr:`limit` is
    closed, so no number of clients can make the node hold more than that (plus
    the chunk being read).
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        """Bytes charged now, by all connections."""

    def charge(self, charged: int, holding: int) -> bool:
        """Change one connection's charge from ``charged`` to ``holding`` bytes.

        Return whether the connection must go: its charge grew and took the
        total past :attr:`limit`. Shrinking never fails, so a connection that
        finishes a packet is not blamed for what the others hold.
        """
        self.held += holding - charged
        return holding > charged and self.held > self.limit

    def give_back(self, charged: int) -> None:
        """A connection that held ``charged`` bytes is gone, or let them go."""
        self.held -= charged
