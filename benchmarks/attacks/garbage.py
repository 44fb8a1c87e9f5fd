"""What held before and must keep holding: random bytes at the udp listener."""

from __future__ import annotations

import os
import socket

from ._victim import UDP_VICTIM, Victim

DATAGRAMS = 100_000


async def random_datagrams(victim: Victim, scale: float) -> dict[str, object]:
    """Random datagrams of 1 to 1400 bytes, as fast as one socket sends them."""
    count = max(1, int(DATAGRAMS * scale))
    host, port = victim.address("udp").removeprefix("udp://").rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index in range(count):
            sock.sendto(os.urandom(1 + index % 1400), (host, int(port)))
    stats = await victim.stats()
    total = stats["total"]
    assert isinstance(total, dict)
    # The one message the victim took is the stats request just made.
    return {"datagrams sent": count, "forged delivered": total["messages_received"] - 1,
            "dropped and counted": sum(total[name] for name in ("malformed", "corrupt")),
            "kernel receive drops": stats.get("receive_drops", {})}


ATTACKS = {"random datagrams": (UDP_VICTIM, random_datagrams)}
