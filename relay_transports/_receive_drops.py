"""What the operating system dropped at a datagram socket before it could be read.

Linux counts, per socket, the datagrams it threw away because the receive
buffer was full (``sk_drops``: the figure ``SO_RXQ_OVFL`` attaches to each
datagram, and the last column of ``/proc/net/udp``). Reading it from ``/proc``
when someone asks for the node's stats costs the per-datagram read path
nothing, where ``SO_RXQ_OVFL`` would turn every ``recvfrom`` into a
``recvmsg`` with ancillary data. Elsewhere the figure is unknown: ``None``.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Final

__all__ = ["socket_drops"]

_TABLES: Final = {socket.AF_INET: Path("/proc/net/udp"), socket.AF_INET6: Path("/proc/net/udp6")}
_INODE_COLUMN: Final = 9
_DROPS_COLUMN: Final = 12


def socket_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped at ``sock``'s full receive buffer, or None if unknown."""
    table = _TABLES.get(sock.family)
    if sys.platform != "linux" or table is None or sock.fileno() < 0:
        return None
    inode = str(os.fstat(sock.fileno()).st_ino)
    try:
        with table.open() as rows:
            next(rows, None)  # the header
            for row in rows:
                columns = row.split()
                if len(columns) > _DROPS_COLUMN and columns[_INODE_COLUMN] == inode:
                    return int(columns[_DROPS_COLUMN])
    except (OSError, ValueError):
        return None
    return None
