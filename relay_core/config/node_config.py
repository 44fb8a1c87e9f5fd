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

import datetime
import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from ..errors import ConfigError, InvalidAddress
from .address import Address, host_problem, parse_address, scheme_problem

__all__ = ["ListenConfig", "NodeConfig", "PeerConfig"]

Options = Mapping[str, object]
Check = Callable[[str, str, object], None]
"""Raise ConfigError if ``value`` may not be set for ``key``; ``where`` prefixes the message."""

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_NAME_RULE = "a name of 1..255 ASCII letters, digits, '_', '.' or '-'"
_PLUGIN = re.compile(r"[a-z0-9._-]{1,32}")
_PLUGIN_RULE = "a plugin name of 1..32 characters from [a-z0-9._-]"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_LONGEST_WIRE_DEADLINE = (2**32 - 2) / 1000
"""Seconds: the largest deadline a REQUEST frame can carry (a 32-bit count of ms,
all ones meaning none)."""
_TABLES = ("node", "listen", "peers", "codecs", "compressors")
_TOML_SCALARS = (str, int, float, bool, datetime.date, datetime.time)
_TYPO_CUTOFF = 0.75
"""How close an unknown key must be to a known one to be taken for a typo of it."""
_MAX_DEPTH = 100
"""Deepest nesting of arrays and tables in an option value (a cycle would recurse forever)."""


def _fail(where: str, text: str, kind: type[ConfigError] = ConfigError) -> ConfigError:
    return kind(f"{where} {text}")


def _reject(where: str, key: str, value: object, allowed: str) -> ConfigError:
    return _fail(where, f"{key} = {_show(value)}: {allowed}")


def _integer(low: int, high: int | None = None) -> Check:
    allowed = f"must be an integer in {low}..{high}" if high else f"must be an integer >= {low}"

    def check(where: str, key: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _reject(where, key, value, f"{allowed}, not {_kind(value)}")
        if value < low or (high is not None and value > high):
            raise _reject(where, key, value, allowed)

    return check


def _seconds(low: float, high: float) -> Check:
    allowed = f"must be a number of seconds, more than {low:g} and at most {high:.3f}"

    def check(where: str, key: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _reject(where, key, value, f"{allowed}, not {_kind(value)}")
        if not low < value <= high:  # NaN fails this too
            raise _reject(where, key, value, allowed)

    return check


def _optional_port(where: str, key: str, value: object) -> None:
    if value is not None:
        _integer(0, 65535)(where, key, value)


def _boolean(where: str, key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise _reject(where, key, value, f"must be true or false, not {_kind(value)}")


def _text(pattern: re.Pattern[str], rule: str, *, optional: bool = False) -> Check:
    def check(where: str, key: str, value: object) -> None:
        if optional and value is None:
            return
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise _reject(where, key, value, f"must be {rule}")

    return check


def _host(where: str, key: str, value: object) -> None:
    if not isinstance(value, str):
        raise _reject(where, key, value, f"must be a string, not {_kind(value)}")
    problem = host_problem(value)
    if problem:
        raise _reject(
            where,
            key,
            value,
            f"{problem}; expected a numeric IPv4 or IPv6 address "
            "(no brackets) or a host name such as localhost",
        )


def _peer_address(where: str, key: str, value: object) -> None:
    if not isinstance(value, str):
        raise _reject(where, key, value, f"must be a node URL string, not {_kind(value)}")
    try:
        address = parse_address(value, forbid_actor=True)
    except InvalidAddress as exc:
        raise _fail(where, f"{key}: {exc}", InvalidAddress) from None
    if address.port == 0:
        raise _fail(
            where,
            f"{key} = {_show(value)}: a peer needs its real port, 1..65535 "
            "(port 0 only means 'any free port' when listening)",
            InvalidAddress,
        )


_NODE_KEYS: Mapping[str, Check] = {
    "name": _text(_NAME, _NAME_RULE),
    "codec": _text(_PLUGIN, _PLUGIN_RULE),
    "compressor": _text(_PLUGIN, _PLUGIN_RULE),
    "max_message_size": _integer(1, 2**32 - 1),
    "mailbox_size": _integer(1),
    "mailbox_bytes": _integer(1),
    "max_buffered_bytes": _integer(1),
    "max_decompression_rate": _integer(1024 * 1024),
    "duplicate_window": _integer(64, 2**20),
    "max_senders": _integer(1),
    "max_active_requests": _integer(1, 2**20),
    "max_request_deadline": _seconds(0.0, _LONGEST_WIRE_DEADLINE),
    "send_tracebacks": _boolean,
    "expose_stats": _boolean,
    "metrics_host": _host,
    "metrics_port": _optional_port,
}
_LISTEN_KEYS: Mapping[str, Check] = {"host": _host, "port": _integer(0, 65535)}
_PEER_KEYS: Mapping[str, Check] = {
    "address": _peer_address,
    "codec": _text(_PLUGIN, _PLUGIN_RULE, optional=True),
    "compressor": _text(_PLUGIN, _PLUGIN_RULE, optional=True),
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
        _check_values("ListenConfig:", _LISTEN_KEYS, self)
        _set(self, "options", _frozen_options("ListenConfig:", self.options, _LISTEN_KEYS))


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
        _check_values("PeerConfig:", _PEER_KEYS, self)
        _set(self, "options", _frozen_options("PeerConfig:", self.options, _PEER_KEYS))
        _set(self, "_parsed", parse_address(self.address, forbid_actor=True))

    def to_dict(self) -> dict[str, object]:
        """The ``[peers.NAME]`` table as a plain mapping, without unset codec or compressor."""
        given = {"codec": self.codec, "compressor": self.compressor}
        table = {"address": self.address, **{k: v for k, v in given.items() if v is not None}}
        return {**table, **{key: _thawed(value) for key, value in self.options.items()}}

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
        _check_values("NodeConfig: [node]", _NODE_KEYS, self)
        _set(self, "directory", _absolute_directory(self.directory))
        if self.source is not None and not isinstance(self.source, str):
            raise _reject("NodeConfig:", "source", self.source, "must be None or a file name")
        _set(self, "listen", _frozen_members("NodeConfig:", "listen", self.listen, ListenConfig))
        _set(self, "peers", _frozen_members("NodeConfig:", "peers", self.peers, PeerConfig))
        for table in ("codec_options", "compressor_options"):
            _set(self, table, _frozen_plugin_options("NodeConfig:", table, getattr(self, table)))

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
        top = _table(f"{source}:", "the configuration", data)
        _refuse_unknown(f"{source}:", "table", top, _TABLES, lambda key: f"[{_toml_key(key)}]")
        node = _table(f"{source}:", "[node]", top.get("node", {}))
        _refuse_unknown(f"{source}: [node]", "key", node, _NODE_KEYS, repr)
        _check_values(f"{source}: [node]", _NODE_KEYS, node)
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
        return {key: _thawed(value) for key, value in data.items()}

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
    tables = _table(f"{source}:", "[listen]", value)
    result = {}
    for scheme, table in tables.items():
        name = f"[listen.{_toml_key(scheme)}]"
        problem = scheme_problem(scheme)
        if problem:
            raise _fail(f"{source}:", f"{name}: {problem}")
        where = f"{source}: {name}"
        known, options = _split_options(where, _table(f"{source}:", name, table), _LISTEN_KEYS)
        _check_values(where, _LISTEN_KEYS, known)
        known["options"] = _frozen_options(where, options)
        result[scheme] = ListenConfig(**known)  # type: ignore[arg-type]  # checked above
    return result


def _peers(source: str, value: object) -> dict[str, PeerConfig]:
    tables = _table(f"{source}:", "[peers]", value)
    result = {}
    for name, table in tables.items():
        where = f"{source}: [peers.{_toml_key(name)}]"
        problem = _peer_name_problem(name)
        if problem:
            raise _fail(where, f"is not a valid peer table: {problem}")
        known, options = _split_options(where, _table(where, "", table), _PEER_KEYS)
        if "address" not in known:
            raise _fail(where, 'has no address; add address = "SCHEME://HOST:PORT"')
        _check_values(where, _PEER_KEYS, known)
        known["options"] = _frozen_options(where, options)
        result[name] = PeerConfig(**known)  # type: ignore[arg-type]  # checked above
    return result


def _plugin_tables(source: str, table: str, value: object) -> dict[str, Options]:
    tables = _table(f"{source}:", f"[{table}]", value)
    result = {}
    for name, options in tables.items():
        where = f"{source}: [{table}.{_toml_key(name)}]"
        if not _PLUGIN.fullmatch(name):
            raise _fail(where, f"is not a valid table name: it must be {_PLUGIN_RULE}")
        result[name] = _frozen_options(where, _table(where, "", options))
    return result


def _table(where: str, name: str, value: object) -> Mapping[str, object]:
    """``value`` as a mapping with string keys, or a ConfigError saying it is not one."""
    if not isinstance(value, Mapping):
        raise _fail(where, f"{name} must be a table, not {_kind(value)} {_show(value)}".lstrip())
    for key in value:
        if not isinstance(key, str):
            raise _fail(where, f"{name} has the key {_show(key)}; keys must be strings".lstrip())
    return value


def _refuse_unknown(
    where: str,
    what: str,
    table: Mapping[str, object],
    allowed: Collection[str],
    shown: Callable[[str], str],
) -> None:
    for key in table:
        if key not in allowed:
            names = ", ".join(shown(name) for name in allowed)
            raise _fail(
                where,
                f"unknown {what} {shown(key)}; allowed {what}s: {names}"
                f"{_hint(key, allowed, shown)}",
            )


def _split_options(
    where: str, table: Mapping[str, object], known_keys: Collection[str]
) -> tuple[dict[str, object], dict[str, object]]:
    """Cut a table into the keys this module knows and the plugin's options."""
    known = {key: value for key, value in table.items() if key in known_keys}
    options = {key: value for key, value in table.items() if key not in known_keys}
    _check_option_names(where, options, known_keys)
    return known, options


def _check_option_names(where: str, options: Mapping[str, object], known: Collection[str]) -> None:
    """Refuse option names that are, or look like a typo of, the table's own keys."""
    for key in options:
        if key in known:
            raise _fail(where, f"options may not contain {key!r}: it is a field of its own")
        near = difflib.get_close_matches(key, known, n=1, cutoff=_TYPO_CUTOFF)
        if near:
            raise _fail(where, f"unknown key {key!r}; did you mean {near[0]!r}?")


def _check_values(where: str, checks: Mapping[str, Check], values: object) -> None:
    """Run each key's check on the mapping's value or the object's attribute of that name."""
    for key, check in checks.items():
        if isinstance(values, Mapping):
            if key in values:
                check(where, key, values[key])
        else:
            check(where, key, getattr(values, key))


def _frozen_members(
    where: str, name: str, value: object, kind: type[ListenConfig | PeerConfig]
) -> Mapping[str, object]:
    members = _table(where, name, value)
    key_problem = scheme_problem if kind is ListenConfig else _peer_name_problem
    for key, member in members.items():
        problem = key_problem(key)
        if problem:
            raise _fail(where, f"{name}[{key!r}]: {problem}")
        if not isinstance(member, kind):
            raise _fail(where, f"{name}[{key!r}] must be a {kind.__name__}, not {_kind(member)}")
    return MappingProxyType(dict(members))


def _frozen_plugin_options(where: str, name: str, value: object) -> Mapping[str, Options]:
    tables = _table(where, name, value)
    result = {}
    for plugin, options in tables.items():
        _text(_PLUGIN, _PLUGIN_RULE)(where, f"{name} key", plugin)
        result[plugin] = _frozen_options(
            f"{where} {name}[{plugin!r}]", _table(where, f"{name}[{plugin!r}]", options)
        )
    return MappingProxyType(result)


def _frozen_options(where: str, options: object, fields: Collection[str] = ()) -> Options:
    table = _table(where, "options", options)
    _check_option_names(where, table, fields)
    return MappingProxyType({key: _frozen(where, key, value) for key, value in table.items()})


def _frozen(where: str, key: str, value: object, depth: int = 0) -> object:
    """A read-only copy of a TOML value: tables become mappingproxies, arrays tuples."""
    if isinstance(value, _TOML_SCALARS):
        return value
    if depth >= _MAX_DEPTH:
        raise _fail(where, f"{key} is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, list | tuple):
        return tuple(_frozen(where, key, item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return MappingProxyType(
            {
                inner: _frozen(where, f"{key}.{inner}", item, depth + 1)
                for inner, item in _table(where, key, value).items()
            }
        )
    raise _reject(
        where,
        key,
        value,
        "must be a TOML value (string, integer, float, boolean, "
        f"date/time, array or table), not {_kind(value)}",
    )


def _thawed(value: object) -> object:
    """A mutable copy of a frozen TOML value: mappings become dicts, tuples lists."""
    if isinstance(value, Mapping):
        return {key: _thawed(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thawed(item) for item in value]
    return value


def _absolute_directory(directory: object) -> str | None:
    if directory is None:
        return None
    if not isinstance(directory, str) or not directory:
        raise _reject("NodeConfig:", "directory", directory,
                      "must be None or a directory path (a non-empty string)")
    return os.path.abspath(directory)


def _peer_name_problem(name: str) -> str | None:
    return None if _NAME.fullmatch(name) else f"a peer name must be {_NAME_RULE}"


def _missing_plugin(key: str, kind: str, name: str,
                    installed: Mapping[str, Collection[str]]) -> str:
    names = ", ".join(sorted(installed[kind])) or "none"
    what = f"transport for the scheme {name!r}" if kind == "transport" else f"{kind} {name!r}"
    hint = _hint(name, installed[kind], repr)
    # A name of the wrong kind is the likelier mistake: say what it is.
    hint += "".join(f"; {name!r} is a {other}, not a {kind}"
                    for other, names_of_kind in installed.items()
                    if other != kind and name in names_of_kind)
    return f"{key}: no {what} is installed (installed {kind}s: {names}){hint}"


def _hint(key: str, candidates: Collection[str], shown: Callable[[str], str]) -> str:
    near = difflib.get_close_matches(key, list(candidates), n=1)
    return f"; did you mean {shown(near[0])}?" if near else ""


def _set(obj: object, name: str, value: object) -> None:
    # Frozen dataclasses refuse normal assignment; __post_init__ may still normalise.
    object.__setattr__(obj, name, value)


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _show(value: object) -> str:
    """The value as TOML would spell it (strings as literal strings), cut short."""
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _kind(value: object) -> str:
    kinds = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (Mapping, "a table"),
        (list | tuple, "an array"),
        (datetime.date, "a date"),
    ]
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)
