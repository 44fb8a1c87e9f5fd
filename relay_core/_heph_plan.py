"""Where a node speaks Heph's JSON format (docs/heph.md), read from its config.

``[listen.SCHEME] heph_json = "ACTOR"``: that listener also accepts Heph JSON
datagrams (told apart from ours by their first byte) and delivers their
messages to ACTOR. ``[peers.NAME] format = "heph-json"``: messages to that peer
go as Heph JSON datagrams. Heph's format has no authentication, so it cannot
share a scheme with sealed packets.
"""

from __future__ import annotations

from ._config import NodeConfig
from ._errors import ConfigError
from ._heph import UuidWindow

__all__ = ["HephPlan"]

HEPH_FORMAT = "heph-json"


class HephPlan:
    def __init__(self, config: NodeConfig) -> None:
        self._targets: dict[str, str] = {}
        for scheme, listen in config.listen.items():
            target = listen.options.get("heph_json")
            if target is None:
                continue
            if scheme != "udp" or not isinstance(target, str) or not target:
                raise ConfigError(f"[listen.{scheme}] heph_json = {target!r}: name the actor that "
                                  "receives Heph messages, on a udp listener (Heph over TCP is "
                                  "not supported yet)")
            if "keys" in listen.options:
                raise ConfigError(f"[listen.{scheme}] heph_json cannot be combined with keys: "
                                  "Heph's format is not authenticated")
            self._targets[scheme] = target
        self._heph_peers = set()
        for name, peer in config.peers.items():
            chosen = peer.options.get("format")
            if chosen is None:
                continue
            if chosen != HEPH_FORMAT or peer.parsed.scheme != "udp":
                raise ConfigError(f"[peers.{name}] format = {chosen!r}: the only other format is "
                                  f"{HEPH_FORMAT!r}, on a udp:// address")
            self._heph_peers.add(name)
        self.window = UuidWindow()
        """Heph message uuids seen lately: a repeat is a duplicate."""

    def target_for(self, scheme: str) -> str | None:
        """The actor Heph datagrams on ``scheme`` go to; None if the listener takes none."""
        return self._targets.get(scheme)

    def speaks_heph(self, peer: str | None) -> bool:
        return peer in self._heph_peers
