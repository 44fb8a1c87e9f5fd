"""Where a node speaks Heph's JSON format (docs/heph.md), read from its config.

``[listen.udp] heph_json = "ACTOR"``: that listener also accepts Heph JSON
datagrams (told apart from ours by their first byte) and delivers their
messages to ACTOR. ``[listen.tcp] heph_json = "ACTOR"``: that listener takes
Heph JSON streams only (the TCP transport's ``heph-json`` framing).
``heph_json = ["A", "B"]`` with ``heph_delivery = "to_all"`` or ``"to_one"``: a
group, as Heph's ``RelayGroup`` (a copy to each, or each message to one in
turn); a group of more than one must say which, as Heph's does.
``heph_with_source = true``: the actors get a ``HephMessage`` (the message, its
source and a reply ref) rather than the bare message. Together these make the
listener's :class:`~relay_core.protocol.heph_route.HephRoute`.
``[peers.NAME] format = "heph-json"``: messages to that peer go in Heph's
format (datagrams on udp://, a stream of objects on tcp://). Heph's format has
no authentication, so it cannot share a listener with keys. The transport's
``framing`` option is set from these keys only: the node hands the tcp
transport a :class:`~relay_core.HephJsonFraming` bounding objects to its
``max_message_size``, as the value of that option (the listener's or the
peer's), and the transport writes and cuts packets with it.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError
from ..interfaces import StreamFraming
from ..protocol.heph_route import HephRoute
from ..protocol.stream_framings import HephJsonFraming
from .node_config import NodeConfig

__all__ = ["HephPlan"]

HEPH_FORMAT = "heph-json"
HEPH_SCHEMES = ("udp", "tcp")
_DELIVERIES = ("to_all", "to_one")
_ROUTE_KEYS = ("heph_delivery", "heph_with_source")


def _route(scheme: str, options: Mapping[str, object]) -> HephRoute | None:
    """The listener's Heph route, or None if it takes no Heph messages; ConfigError for a
    bad value."""
    where = f"[listen.{scheme}]"
    target = options.get("heph_json")
    if target is None:
        for key in _ROUTE_KEYS:
            if key in options:
                raise ConfigError(f"{where} {key} needs heph_json, which names the actor (or "
                                  "actors) that receive Heph messages")
        return None
    actors = _actors(where, scheme, target)
    if "keys" in options:
        raise ConfigError(f"{where} heph_json cannot be combined with keys: "
                          "Heph's format is not authenticated")
    delivery = options.get("heph_delivery")
    if delivery is None and len(actors) > 1:
        raise ConfigError(f"{where} heph_json names {len(actors)} actors: set heph_delivery = "
                          "\"to_all\" (a copy to each) or \"to_one\" (each message to one, in "
                          "turn), as Heph's RelayGroup asks")
    if delivery is not None and delivery not in _DELIVERIES:
        raise ConfigError(f"{where} heph_delivery = {delivery!r}: must be \"to_all\" (a copy to "
                          "each actor) or \"to_one\" (each message to one, in turn)")
    with_source = options.get("heph_with_source", False)
    if not isinstance(with_source, bool):
        raise ConfigError(f"{where} heph_with_source = {with_source!r}: must be true (actors get "
                          "a HephMessage with the source and a reply ref) or false (the message)")
    return HephRoute(actors, to_one=delivery == "to_one", with_source=with_source)


def _actors(where: str, scheme: str, target: object) -> tuple[str, ...]:
    listed = list(target) if isinstance(target, (list, tuple)) else [target]
    names = [name for name in listed if isinstance(name, str) and name]
    if scheme not in HEPH_SCHEMES or not names or len(names) != len(listed):
        raise ConfigError(f"{where} heph_json = {target!r}: name the actor that receives Heph "
                          "messages (or a non-empty list of actors), on a udp or tcp listener")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{where} heph_json names {', '.join(map(repr, repeated))} more than "
                          "once; list each actor once")
    return tuple(names)


def _refuse_framing(config: NodeConfig) -> None:
    tables = [(f"listen.{s}", t.options) for s, t in config.listen.items()]
    tables += [(f"peers.{n}", p.options) for n, p in config.peers.items()]
    for where, options in tables:
        if "framing" in options:
            raise ConfigError(f"[{where}] framing is set by the node: use heph_json = \"ACTOR\" "
                              "on a listener or format = \"heph-json\" on a peer")


class HephPlan:
    def __init__(self, config: NodeConfig) -> None:
        self._routes: dict[str, HephRoute] = {}
        for scheme, listen in config.listen.items():
            route = _route(scheme, listen.options)
            if route is not None:
                self._routes[scheme] = route
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
        object_size = max(2, config.max_message_size)
        self._framing: StreamFraming = HephJsonFraming(max_object_size=object_size)
        self._listener_framing: StreamFraming = HephJsonFraming(max_object_size=object_size,
                                                                answers_bare=True)
        """An accepted Heph connection is answered with bare messages (docs/heph.md)."""

    @property
    def routes(self) -> dict[str, HephRoute]:
        """Where Heph messages go, by the scheme of the listener that takes them."""
        return dict(self._routes)

    def speaks_heph(self, peer: str | None) -> bool:
        return peer in self._heph_peers

    def transport_options(self, scheme: str) -> dict[str, object]:
        """Constructor options a transport needs: a TCP Heph listener frames Heph's way."""
        if scheme == "tcp" and scheme in self._routes:
            return {"framing": self._listener_framing}
        return {}

    def prepare_options(self, peer: str | None) -> dict[str, object]:
        """Options to prepare a peer's destination with: Heph framing for a TCP Heph peer."""
        return {"framing": self._framing} if peer in self._tcp_peers else {}
