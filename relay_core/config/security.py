"""Who may reach this node, and which packets are sealed: the node's security policy.

Some keys of ``[listen.SCHEME]`` and ``[peers.NAME]`` tables belong to the node,
not to the transport: ``keys``, ``send_key_id`` and ``allow`` (and ``fault``,
read by the fault adapter). :func:`transport_options` leaves them out of what
a transport sees.

Rules this policy keeps:
- a packet to a peer with ``keys`` is sealed with its ``send_key_id``;
- every key configured anywhere opens received packets (key ids are unique
  per node: one id, one key);
- on a scheme where any keys are configured, unsealed packets are refused:
  otherwise a forger would just leave the seal off;
- a listener with ``allow`` accepts packets only from those source networks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from ..errors import ConfigError
from ..protocol.seal import KeyRing, Sealer, parse_key
from .node_config import NodeConfig

__all__ = ["NODE_LISTEN_KEYS", "NODE_PEER_KEYS", "SecurityPolicy", "transport_options"]

NODE_LISTEN_KEYS = frozenset({"keys", "allow", "fault", "heph_json", "heph_delivery",
                              "heph_with_source", "framing"})
NODE_PEER_KEYS = frozenset({"keys", "send_key_id", "fault", "fallback", "format", "framing"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_CACHED_SOURCES = 4096


def transport_options(options: Mapping[str, object], node_keys: frozenset[str]) -> dict[str, object]:
    """``options`` without the keys the node itself consumes."""
    return {key: value for key, value in options.items() if key not in node_keys}


def _parse_keys(value: object, where: str) -> dict[int, bytes]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"[{where}] keys must be a table of key id = key, for example "
                          '{ "1" = "<64 hex digits or base64 of 32 bytes>" }')
    keys = {}
    for key_id, text in value.items():
        if not str(key_id).isdigit() or not 0 <= int(key_id) <= 0xFFFFFFFF:
            raise ConfigError(f"[{where}] keys: key id {key_id!r} must be an integer "
                              "0..4294967295")
        if not isinstance(text, str):
            raise ConfigError(f"[{where}] keys.{key_id} must be a string")
        keys[int(key_id)] = parse_key(text, f"{where}.keys.{key_id}")
    return keys


def _send_key_id(options: Mapping[str, object], keys: Mapping[int, bytes], where: str) -> int:
    chosen = options.get("send_key_id", max(keys) if len(keys) == 1 else None)
    if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen not in keys:
        raise ConfigError(f"[{where}] send_key_id = {chosen!r}: must name one of the key ids "
                          f"in keys ({', '.join(map(str, sorted(keys)))})")
    return chosen


def _parse_allow(value: object, where: str) -> tuple[Network, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"[{where}] allow must be a list of networks, e.g. "
                          '["127.0.0.0/8", "10.1.0.0/16", "::1/128"]')
    try:
        return tuple(ipaddress.ip_network(str(item), strict=False) for item in value)
    except ValueError as exc:
        raise ConfigError(f"[{where}] allow: {exc}") from None


class SecurityPolicy:
    def __init__(self, config: NodeConfig) -> None:
        all_keys: dict[int, bytes] = {}
        self._peer_sealers: dict[str, Sealer] = {}
        self._sealed_schemes: set[str] = set()
        self._allow: dict[str, tuple[Network, ...]] = {}
        for scheme, listen in config.listen.items():
            where = f"listen.{scheme}"
            if "keys" in listen.options:
                self._add_keys(all_keys, _parse_keys(listen.options["keys"], where), where)
                self._sealed_schemes.add(scheme)
            if "allow" in listen.options:
                self._allow[scheme] = _parse_allow(listen.options["allow"], where)
        for name, peer in config.peers.items():
            where = f"peers.{name}"
            if "send_key_id" in peer.options and "keys" not in peer.options:
                raise ConfigError(f"[{where}] send_key_id needs keys in the same table")
            if "keys" in peer.options:
                keys = _parse_keys(peer.options["keys"], where)
                self._add_keys(all_keys, keys, where)
                ring = KeyRing(keys, _send_key_id(peer.options, keys, where))
                self._peer_sealers[name] = Sealer(ring)
                self._sealed_schemes.add(peer.parsed.scheme)
        self._all_keys = all_keys
        self._reply_sealers: dict[int, Sealer] = {}
        self.opener = Sealer(KeyRing(all_keys, min(all_keys))) if all_keys else None
        """Opens every sealed packet this node receives; None when no keys are configured."""
        self._allowed_sources: dict[tuple[str, str], bool] = {}

    @staticmethod
    def _add_keys(into: dict[int, bytes], keys: Mapping[int, bytes], where: str) -> None:
        for key_id, key in keys.items():
            if into.get(key_id, key) != key:
                raise ConfigError(f"[{where}] key id {key_id} names a different key elsewhere in "
                                  "this config; a key id must mean one key on a node")
            into[key_id] = key

    def reply_sealer(self, key_id: int) -> Sealer:
        """How to seal replies to a request that came sealed under ``key_id``."""
        sealer = self._reply_sealers.get(key_id)
        if sealer is None:
            assert self.opener is not None
            ring = KeyRing(self._all_keys, key_id)
            sealer = self._reply_sealers[key_id] = Sealer(ring)
        return sealer

    def sealer_for(self, peer: str | None) -> Sealer | None:
        """How to seal packets to ``peer`` (None: they go unsealed)."""
        return self._peer_sealers.get(peer) if peer else None

    @property
    def sealed_schemes(self) -> frozenset[str]:
        """Schemes on which unsealed packets are refused."""
        return frozenset(self._sealed_schemes)

    @property
    def screened_schemes(self) -> frozenset[str]:
        """Schemes whose listener accepts only some source networks."""
        return frozenset(self._allow)

    def allows(self, scheme: str, host: str) -> bool:
        """Whether the listener for ``scheme`` accepts packets from ``host``."""
        networks = self._allow.get(scheme)
        if networks is None:
            return True
        key = (scheme, host)
        allowed = self._allowed_sources.get(key)
        if allowed is None:
            address = ipaddress.ip_address(host.partition("%")[0])
            allowed = any(address in network for network in networks)
            if len(self._allowed_sources) < MAX_CACHED_SOURCES:
                self._allowed_sources[key] = allowed
        return allowed
