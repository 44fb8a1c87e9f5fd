"""Where a node speaks Heph's JSON format (docs/heph.md), read from its config.

``[listen.udp] heph_json = "ACTOR"``: that listener also accepts Heph JSON
datagrams (told apart from ours by their first byte) and delivers their
messages to ACTOR. ``[listen.tcp] heph_json = "ACTOR"``: that listener takes
Heph JSON streams only (the TCP transport's ``heph-json`` framing).
``[peers.NAME] format = "heph-json"``: messages to that peer go in Heph's
format (datagrams on udp://, a stream of objects on tcp://). Heph's format has
no authentication, so it cannot share a listener with keys. The transport's
``framing`` option is set from these keys only: the node hands the tcp
transport a :class:`~relay_core.HephJsonFraming` bounding objects to its
``max_message_size``, as the value of that option (the listener's or the
peer's), and the transport writes and cuts packets with it.
"""

from __future__ import annotations

from ..errors import ConfigError
from ..interfaces import StreamFraming
from ..protocol.heph_stream import HephJsonFraming
from .node_config import NodeConfig

__all__ = ["HephPlan"]

HEPH_FORMAT = "heph-json"
HEPH_SCHEMES = ("udp", "tcp")


def _refuse_framing(config: NodeConfig) -> None:
    tables = [(f"listen.{s}", t.options) for s, t in config.listen.items()]
    tables += [(f"peers.{n}", p.options) for n, p in config.peers.items()]
    for where, options in tables:
        if "framing" in options:
            raise ConfigError(f"[{where}] framing is set by the node: use heph_json = \"ACTOR\" "
                              "on a listener or format = \"heph-json\" on a peer")


class HephPlan:
    def __init__(self, config: NodeConfig) -> None:
        self._targets: dict[str, str] = {}
        for scheme, listen in config.listen.items():
            target = listen.options.get("heph_json")
            if target is None:
                continue
            if scheme not in HEPH_SCHEMES or not isinstance(target, str) or not target:
                raise ConfigError(f"[listen.{scheme}] heph_json = {target!r}: name the actor that "
                                  "receives Heph messages, on a udp or tcp listener")
            if "keys" in listen.options:
                raise ConfigError(f"[listen.{scheme}] heph_json cannot be combined with keys: "
                                  "Heph's format is not authenticated")
            self._targets[scheme] = target
        self._heph_peers: set[str] = set()
        self._tcp_peers: set[str] = set()
        _refuse_framing(config)
        for name, peer in config.peers.items():
            chosen = peer.options.get("format")
            if chosen is None:
                continue
            if chosen != HEPH_FORMAT or peer.parsed.scheme not in HEPH_SCHEMES:
                raise ConfigError(f"[peers.{name}] format = {chosen!r}: the only other format is "
                                  f"{HEPH_FORMAT!r}, on a udp:// or tcp:// address")
            self._heph_peers.add(name)
            if peer.parsed.scheme == "tcp":
                self._tcp_peers.add(name)
        # An object over the node's message limit closes its connection as it arrives,
        # rather than being read whole (up to max_packet_size) and refused afterwards.
        # (An object takes 2 bytes at least: a smaller limit would take nothing either.)
        self._framing: StreamFraming = HephJsonFraming(
            max_object_size=max(2, config.max_message_size))

    @property
    def targets(self) -> dict[str, str]:
        """The actor Heph datagrams go to, by the scheme of the listener that takes them."""
        return dict(self._targets)

    def speaks_heph(self, peer: str | None) -> bool:
        return peer in self._heph_peers

    def transport_options(self, scheme: str) -> dict[str, object]:
        """Constructor options a transport needs: a TCP Heph listener frames Heph's way."""
        return {"framing": self._framing} if scheme == "tcp" and scheme in self._targets else {}

    def prepare_options(self, peer: str | None) -> dict[str, object]:
        """Options to prepare a peer's destination with: Heph framing for a TCP Heph peer."""
        return {"framing": self._framing} if peer in self._tcp_peers else {}
