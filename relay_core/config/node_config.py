"""The node configuration: :class:`NodeConfig` and the TOML file it is loaded from.

The rules this module keeps (docs/config.md is the user-facing reference):

- ``NodeConfig(...)`` in code and ``NodeConfig.from_file(...)`` build the same
  value through the same checks; a file only adds where a bad value was (file,
  table, key) to the message, and its directory as :attr:`NodeConfig.directory`,
  which relative file paths in plugin options resolve against (relay_core.config.paths).
- Every rejection is a :class:`~relay_core.ConfigError` (an
  :class:`~relay_core.InvalidAddress` for a bad peer address) naming the key,
  the value and what is allowed. Nothing else escapes, whatever the input.
- A config is immutable all the way down: every mapping is a read-only copy,
  and arrays inside plugin options become tuples. Instances never share a
  mutable default.
- Keys of ``[listen.SCHEME]`` and ``[peers.NAME]`` other than the ones this
  module knows are the transport's options; they are kept, not checked here
  (the node checks them against the transport class), except that a near-miss
  of a known key (``adress``) is taken for a typo.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from ..errors import ConfigError
from .address import Address, parse_address, scheme_problem
from .checks import (
    NAME_PATTERN,
    NAME_RULE,
    PLUGIN_PATTERN,
    PLUGIN_RULE,
    Check,
    Options,
    as_table,
    boolean,
    check_values,
    did_you_mean,
    fail,
    frozen_options,
    frozen_plugin_options,
    host_name,
    integer_in,
    kind_of,
    optional_port,
    peer_address,
    peer_name_problem,
    refuse_unknown,
    reject,
    seconds_in,
    split_options,
    text_matching,
    thawed,
    toml_key,
)

__all__ = ["ListenConfig", "NodeConfig", "PeerConfig"]

_LONGEST_WIRE_DEADLINE = (2**32 - 2) / 1000
"""Seconds: the largest deadline a REQUEST frame can carry (a 32-bit count of ms,
all ones meaning none)."""
_TABLES = ("node", "listen", "peers", "codecs", "compressors")


_NODE_KEYS: Mapping[str, Check] = {
    "name": text_matching(NAME_PATTERN, NAME_RULE),
    "codec": text_matching(PLUGIN_PATTERN, PLUGIN_RULE),
    "compressor": text_matching(PLUGIN_PATTERN, PLUGIN_RULE),
    "max_message_size": integer_in(1, 2**32 - 1),
    "mailbox_size": integer_in(1),
    "mailbox_bytes": integer_in(1),
    "max_buffered_bytes": integer_in(1),
    "max_decompression_rate": integer_in(1024 * 1024),
    "duplicate_window": integer_in(64, 2**20),
    "max_senders": integer_in(1),
    "max_active_requests": integer_in(1, 2**20),
    "max_request_deadline": seconds_in(0.0, _LONGEST_WIRE_DEADLINE),
    "send_tracebacks": boolean,
    "expose_stats": boolean,
    "metrics_host": host_name,
    "metrics_port": optional_port,
}
_LISTEN_KEYS: Mapping[str, Check] = {"host": host_name, "port": integer_in(0, 65535)}
_PEER_KEYS: Mapping[str, Check] = {
    "address": peer_address,
    "codec": text_matching(PLUGIN_PATTERN, PLUGIN_RULE, optional=True),
    "compressor": text_matching(PLUGIN_PATTERN, PLUGIN_RULE, optional=True),
}


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """One ``[listen.SCHEME]`` table: where a transport listens, and its options."""

    host: str = "127.0.0.1"
    """Numeric IPv4/IPv6 (no brackets) or a host name; ``0.0.0.0``/``::`` for all."""
    port: int = 0
    """0 lets the operating system pick a free port."""
    options: Options = field(default_factory=dict, hash=False)
    """Keyword options for the transport's constructor (``max_datagram_size``...)."""

    def __post_init__(self) -> None:
        check_values("ListenConfig:", _LISTEN_KEYS, self)
        _set(self, "options", frozen_options("ListenConfig:", self.options, _LISTEN_KEYS))


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One ``[peers.NAME]`` table: a node this one sends to by name."""

    address: str
    """The peer's node URL, ``SCHEME://HOST:PORT``, without an actor name."""
    codec: str | None = None
    """Codec for frames to this peer; None means ``[node].codec``."""
    compressor: str | None = None
    """Compressor for frames to this peer; None means ``[node].compressor``."""
    options: Options = field(default_factory=dict, hash=False)
    """Transport options for this peer (for example keys or certificates)."""
    _parsed: Address = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        check_values("PeerConfig:", _PEER_KEYS, self)
        _set(self, "options", frozen_options("PeerConfig:", self.options, _PEER_KEYS))
        _set(self, "_parsed", parse_address(self.address, forbid_actor=True))

    def to_dict(self) -> dict[str, object]:
        """The ``[peers.NAME]`` table as a plain mapping, without unset codec or compressor."""
        given = {"codec": self.codec, "compressor": self.compressor}
        table = {"address": self.address, **{k: v for k, v in given.items() if v is not None}}
        return {**table, **{key: thawed(value) for key, value in self.options.items()}}

    @property
    def parsed(self) -> Address:
        """The address, parsed and normalised."""
        return self._parsed


def _default_listen() -> Mapping[str, ListenConfig]:
    return {"udp": ListenConfig()}


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a node needs to start: limits, listeners, peers and plugin options.

    Build it in code, or load it with :meth:`from_file`; both run the same checks.
    """

    name: str = "node"
    codec: str = "msgpack"
    """Codec for outgoing frames unless a peer names its own."""
    compressor: str = "none"
    """Compressor for outgoing frames unless a peer names its own."""
    max_message_size: int = 16 * 1024 * 1024
    """Largest encoded (and decompressed) message, in bytes, sent or accepted."""
    mailbox_size: int = 1024
    """Default bound of a spawned actor's mailbox, in messages."""
    mailbox_bytes: int = 16 * 1024 * 1024
    """Default bound of a spawned actor's mailbox in bytes: what the received messages it
    holds decoded from (decompressed payloads). An empty mailbox takes one message of
    any size up to ``max_message_size``."""
    max_buffered_bytes: int = 64 * 1024 * 1024
    """Bytes of received input the node holds at once, in every mailbox and every parked
    source's backlog together; past it a datagram's message is dropped (``mailbox_full``)
    and a stream's source waits."""
    max_decompression_rate: int = 128 * 1024 * 1024
    """Bytes per second the node decompresses, at most, over every source (with bursts
    of a quarter of it, at least one packet's budget, plus one message): past it
    compressed frames are dropped undecompressed (``decompression_limited``), so
    that a flood of small datagrams that each expand to a whole message cannot take
    the node's CPU."""
    duplicate_window: int = 4096
    """Sequence numbers remembered per sender incarnation, to drop duplicates."""
    max_senders: int = 4096
    """Sender incarnations remembered; the least recently seen is forgotten first."""
    max_active_requests: int = 4096
    """Requests from other nodes handled at once; past it the oldest is cancelled."""
    max_request_deadline: float = 300.0
    """Seconds a request from another node may run: one that names no deadline, or a
    later one, gets this."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on this port (0 picks one); None: no metrics endpoint."""
    metrics_host: str = "127.0.0.1"
    """Address the metrics endpoint listens on."""
    expose_stats: bool = True
    """Host the ``$stats`` actor, which answers an RPC with this node's counters."""
    send_tracebacks: bool = False
    """Send a failing handler's formatted traceback to the caller (``RemoteError.remote_traceback``)."""
    listen: Mapping[str, ListenConfig] = field(default_factory=_default_listen, hash=False)
    """Listeners by URL scheme; by default UDP on 127.0.0.1, any free port."""
    peers: Mapping[str, PeerConfig] = field(default_factory=dict, hash=False)
    codec_options: Mapping[str, Options] = field(default_factory=dict, hash=False)
    """Keyword options for codec constructors, by codec name."""
    compressor_options: Mapping[str, Options] = field(default_factory=dict, hash=False)
    """Keyword options for compressor constructors, by compressor name."""
    directory: str | None = None
    """The directory relative file paths in plugin options resolve against (made
    absolute); set by :meth:`from_file` to the file's directory. None: the working
    directory. Not a TOML key, so :meth:`to_dict` leaves it out."""
    source: str | None = field(default=None, compare=False)
    """The file this config was loaded from, as given to :meth:`from_file`, for messages
    about it found later (a plugin's option); None for a config built in code. Not a
    TOML key."""

    def __post_init__(self) -> None:
        check_values("NodeConfig: [node]", _NODE_KEYS, self)
        _set(self, "directory", _absolute_directory(self.directory))
        if self.source is not None and not isinstance(self.source, str):
            raise reject("NodeConfig:", "source", self.source, "must be None or a file name")
        _set(self, "listen", _frozen_members("NodeConfig:", "listen", self.listen, ListenConfig))
        _set(self, "peers", _frozen_members("NodeConfig:", "peers", self.peers, PeerConfig))
        for table in ("codec_options", "compressor_options"):
            _set(self, table, frozen_plugin_options("NodeConfig:", table, getattr(self, table)))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> NodeConfig:
        """Load and check a TOML file; any problem is a ConfigError naming the file.

        Relative file paths in its plugin options are relative to the file's directory.
        """
        source = os.fspath(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{source}: cannot read the config file: {exc.strerror or exc}"
            ) from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{source}: the file is not UTF-8 text (byte {exc.start}); TOML files must be UTF-8"
            ) from None
        config = cls.from_toml(text, source=source)
        return replace(config, directory=os.path.dirname(os.path.abspath(source)), source=source)

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<string>") -> NodeConfig:
        """Parse and check TOML text; ``source`` names it in error messages."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: invalid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{source}: invalid TOML: values nested too deeply") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, source: str = "<dict>") -> NodeConfig:
        """Check a mapping shaped like the TOML file (``{"node": {...}, "peers": {...}}``)."""
        top = as_table(f"{source}:", "the configuration", data)
        refuse_unknown(f"{source}:", "table", top, _TABLES, lambda key: f"[{toml_key(key)}]")
        node = as_table(f"{source}:", "[node]", top.get("node", {}))
        refuse_unknown(f"{source}: [node]", "key", node, _NODE_KEYS, repr)
        check_values(f"{source}: [node]", _NODE_KEYS, node)
        sections = {
            "listen": _listeners(source, top["listen"]) if "listen" in top else None,
            "peers": _peers(source, top.get("peers", {})),
            "codec_options": _plugin_tables(source, "codecs", top.get("codecs", {})),
            "compressor_options": _plugin_tables(source, "compressors", top.get("compressors", {})),
        }
        given = {key: value for key, value in sections.items() if value is not None}
        return cls(**node, **given)  # type: ignore[arg-type]  # values checked above

    def to_dict(self) -> dict[str, object]:
        """A plain, mutable mapping shaped like the TOML file; ``from_dict`` reads it back."""
        listen = {
            scheme: {"host": entry.host, "port": entry.port, **entry.options}
            for scheme, entry in self.listen.items()
        }
        peers = {name: peer.to_dict() for name, peer in self.peers.items()}
        data = {
            "node": {key: getattr(self, key) for key in _NODE_KEYS
                     if getattr(self, key) is not None},
            "listen": listen,
            "peers": peers,
            "codecs": self.codec_options,
            "compressors": self.compressor_options,
        }
        return {key: thawed(value) for key, value in data.items()}

    def peer_codec(self, peer: str) -> str:
        """The codec for frames to ``peer``: its own, or the node's default."""
        return self._peer(peer).codec or self.codec

    def peer_compressor(self, peer: str) -> str:
        """The compressor for frames to ``peer``: its own, or the node's default."""
        return self._peer(peer).compressor or self.compressor

    def validate_plugins(
        self, *, codecs: Collection[str], compressors: Collection[str], transports: Collection[str]
    ) -> None:
        """Raise ConfigError unless every plugin this config names is installed.

        Each problem names the key (``peers.beta.codec``), the value, and the
        installed names of that kind.
        """
        installed = {"codec": codecs, "compressor": compressors, "transport": transports}
        problems = [
            _missing_plugin(key, kind, name, installed)
            for key, kind, name in self._plugin_uses()
            if name not in installed[kind]
        ]
        if problems:
            raise ConfigError("; ".join(problems))

    def configured_plugins(self) -> list[tuple[str, str]]:
        """(kind, name) of every plugin this config names or gives options to, once each.

        A node makes each of these when it is made, so that a bad option stops it
        before it starts. A transport that only peers use is left out: the config
        gives its constructor no options (its peer options are the transport's
        ``check_peer_options``).
        """
        named = {(kind, name): None for key, kind, name in self._plugin_uses()
                 if not key.startswith("peers.") or kind != "transport"}
        return list(named)

    def plugin_uses(self) -> list[tuple[str, str, str]]:
        """(dotted key, plugin kind, plugin name) for every plugin this config names."""
        return list(self._plugin_uses())

    def _plugin_uses(self) -> Iterator[tuple[str, str, str]]:
        """(dotted key, plugin kind, plugin name) for every plugin the config names."""
        yield "node.codec", "codec", self.codec
        yield "node.compressor", "compressor", self.compressor
        for scheme in self.listen:
            yield f"listen.{scheme}", "transport", scheme
        for name, peer in self.peers.items():
            yield f"peers.{name}.address", "transport", peer.parsed.scheme
            if peer.codec is not None:
                yield f"peers.{name}.codec", "codec", peer.codec
            if peer.compressor is not None:
                yield f"peers.{name}.compressor", "compressor", peer.compressor
        yield from ((f"codecs.{name}", "codec", name) for name in self.codec_options)
        yield from ((f"compressors.{name}", "compressor", name) for name in self.compressor_options)

    def _peer(self, peer: str) -> PeerConfig:
        try:
            return self.peers[peer]
        except KeyError:
            known = ", ".join(sorted(self.peers)) or "none"
            raise ConfigError(f"no peer named {peer!r} is configured; peers: {known}") from None


def _listeners(source: str, value: object) -> dict[str, ListenConfig]:
    tables = as_table(f"{source}:", "[listen]", value)
    result = {}
    for scheme, table in tables.items():
        name = f"[listen.{toml_key(scheme)}]"
        problem = scheme_problem(scheme)
        if problem:
            raise fail(f"{source}:", f"{name}: {problem}")
        where = f"{source}: {name}"
        known, options = split_options(where, as_table(f"{source}:", name, table), _LISTEN_KEYS)
        check_values(where, _LISTEN_KEYS, known)
        known["options"] = frozen_options(where, options)
        result[scheme] = ListenConfig(**known)  # type: ignore[arg-type]  # checked above
    return result


def _peers(source: str, value: object) -> dict[str, PeerConfig]:
    tables = as_table(f"{source}:", "[peers]", value)
    result = {}
    for name, table in tables.items():
        where = f"{source}: [peers.{toml_key(name)}]"
        problem = peer_name_problem(name)
        if problem:
            raise fail(where, f"is not a valid peer table: {problem}")
        known, options = split_options(where, as_table(where, "", table), _PEER_KEYS)
        if "address" not in known:
            raise fail(where, 'has no address; add address = "SCHEME://HOST:PORT"')
        check_values(where, _PEER_KEYS, known)
        known["options"] = frozen_options(where, options)
        result[name] = PeerConfig(**known)  # type: ignore[arg-type]  # checked above
    return result


def _plugin_tables(source: str, table: str, value: object) -> dict[str, Options]:
    tables = as_table(f"{source}:", f"[{table}]", value)
    result = {}
    for name, options in tables.items():
        where = f"{source}: [{table}.{toml_key(name)}]"
        if not PLUGIN_PATTERN.fullmatch(name):
            raise fail(where, f"is not a valid table name: it must be {PLUGIN_RULE}")
        result[name] = frozen_options(where, as_table(where, "", options))
    return result


def _frozen_members(
    where: str, name: str, value: object, kind: type[ListenConfig | PeerConfig]
) -> Mapping[str, object]:
    members = as_table(where, name, value)
    key_problem = scheme_problem if kind is ListenConfig else peer_name_problem
    for key, member in members.items():
        problem = key_problem(key)
        if problem:
            raise fail(where, f"{name}[{key!r}]: {problem}")
        if not isinstance(member, kind):
            raise fail(where, f"{name}[{key!r}] must be a {kind.__name__}, not {kind_of(member)}")
    return MappingProxyType(dict(members))


def _absolute_directory(directory: object) -> str | None:
    if directory is None:
        return None
    if not isinstance(directory, str) or not directory:
        raise reject("NodeConfig:", "directory", directory,
                      "must be None or a directory path (a non-empty string)")
    return os.path.abspath(directory)


def _missing_plugin(key: str, kind: str, name: str,
                    installed: Mapping[str, Collection[str]]) -> str:
    names = ", ".join(sorted(installed[kind])) or "none"
    what = f"transport for the scheme {name!r}" if kind == "transport" else f"{kind} {name!r}"
    hint = did_you_mean(name, installed[kind], repr)
    # A name of the wrong kind is the likelier mistake: say what it is.
    hint += "".join(f"; {name!r} is a {other}, not a {kind}"
                    for other, names_of_kind in installed.items()
                    if other != kind and name in names_of_kind)
    return f"{key}: no {what} is installed (installed {kind}s: {names}){hint}"


def _set(obj: object, name: str, value: object) -> None:
    # Frozen dataclasses refuse normal assignment; __post_init__ may still normalise.
    object.__setattr__(obj, name, value)






