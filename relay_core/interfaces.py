"""The three things a plugin can provide: a Codec, a Compressor, a Transport; and the
StreamFraming a stream transport is handed (public).

They are deliberately small, because third parties implement them:

- a **Codec** turns a message (the data model in docs/protocol.md) into bytes
  and back. It is pure: no I/O, no state between calls.
- a **Compressor** shrinks payloads and restores them, never producing more
  than the caller allows.
- a **Transport** moves opaque packets for one URL scheme. It knows nothing of
  actors, codecs or the wire format; the node hands it whole packets and it
  hands received packets back through :class:`TransportEvents`.
- a **StreamFraming** is how a stream transport writes packets on a byte stream and
  cuts them back out (:class:`PacketSplitter`). The node hands a stream transport its
  framing; the built-in ones are net-relay's length prefix
  (:class:`~relay_core.LengthPrefixFraming`) and Heph's JSON objects back to back
  (:class:`~relay_core.HephJsonFraming`).

Every plugin class has a class attribute naming it (``name`` for codecs and
compressors, ``scheme`` for transports), unique across installed plugins, and a
constructor that takes its options as keyword arguments (the matching config
table, for example ``[compressors.zstd]``). A node makes every plugin its config
names when the node is made, so the constructor is where options are checked:
raise :class:`~relay_core.ConfigError` naming the option and saying what is
allowed (``level = 99 is not allowed: an integer from 1 to 22``); the node puts
the config file and the table in front. Options that name files are listed
in the class attribute ``path_options``: when the options come from a config
file, the node makes a relative path there relative to that file's directory.

A plugin declares the options a config table may give it once, in the class
attribute ``options``: a tuple of :class:`PluginOption` (name, type, default,
doc). The node checks every table against those declarations when it is made
(unknown keys, with a "did you mean"; types; required keys), before the
constructor checks the values; ``net-relay plugins --options`` lists them. A
transport declares its ``[peers.NAME]`` keys in ``peer_options`` the same way.
A class that declares nothing (``options = None``) is checked against its
constructor's signature instead.
"""

from __future__ import annotations

import abc
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Protocol, runtime_checkable

from .errors import ConfigError, MalformedFrame

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "Codec",
    "Compressor",
    "ConnectionDropReason",
    "HostPort",
    "OptionType",
    "PacketSplitter",
    "PluginOption",
    "StreamFraming",
    "Transport",
    "TransportEvents",
    "UnsentReason",
    "check_declared",
    "endpoint_url",
    "format_host_port",
]

HostPort = tuple[str, int]
"""A numeric host (IPv4 or IPv6 literal, no brackets) and a port."""


def format_host_port(host: str, port: int) -> str:
    """``host:port``, with IPv6 hosts in brackets: ``[::1]:9002``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoint_url(scheme: str, host_port: HostPort) -> str:
    """``scheme://host:port``, with an IPv6 host in brackets: how a node endpoint is named."""
    return f"{scheme}://{format_host_port(*host_port)}"


UnsentReason = Literal["link_full", "closed_unsent", "connection_lost", "peer_unreachable"]
"""Why packets ``send`` accepted were never written; each is the counter their messages go to:
the queue to the destination was past its hard limit; the transport closed first; the
connection they waited for was lost (or its handshake failed); an attempt to connect
found the peer unreachable (refused, no route, a TLS handshake that did not verify)."""

ConnectionDropReason = Literal["connections_refused", "connections_timed_out",
                               "connections_over_budget", "handshakes_dropped"]
"""Why a listener refused a client's connection, closed it or dropped its handshake; the
counter it goes to: it held its ``max_connections`` (or ran out of descriptors); the client
sent no handshake or whole packet in time, or idled; its unfinished packet would have passed
the buffered-input budget; or the listener dropped its oldest unfinished handshake to make
room for a new one (it held ``max_handshakes``)."""


OptionType = Literal["integer", "number", "boolean", "string", "path", "paths", "table",
                     "array", "framing"]
"""The TOML type of a plugin option: ``number`` takes an integer or a float; ``path`` is a
string naming a file; ``paths`` a string or an array of strings naming files. ``framing``
is no TOML type: a :class:`StreamFraming` the node sets, never a config."""

OPTION_TYPES: tuple[OptionType, ...] = ("integer", "number", "boolean", "string", "path", "paths",
                                        "table", "array", "framing")


@dataclass(frozen=True, slots=True)
class PluginOption:
    """One key a plugin takes from its config table, declared in the class's ``options``.

    The node checks the key's presence and TOML type against this at start; the
    plugin's constructor still checks the value (a range, a file that must exist).
    """

    name: str
    """The key in the config table, e.g. ``level``."""
    type: OptionType
    """What TOML type the value must have."""
    default: object = None
    """The value the plugin uses when the key is absent, as TOML would write it; None when
    there is none, or it is computed (``doc`` then says how)."""
    doc: str = ""
    """One sentence for users: what it changes, its unit, what values are allowed."""
    required: bool = False
    """True if a table for this plugin must give the key."""
    choices: tuple[str, ...] = ()
    """For a string, the only values allowed; empty for any string."""

    def __post_init__(self) -> None:
        if self.type not in OPTION_TYPES:
            raise TypeError(f"PluginOption {self.name!r}: type {self.type!r} is not one of "
                            f"{', '.join(OPTION_TYPES)}")


def check_declared(declared: Sequence[PluginOption], options: Mapping[str, object], where: str,
                   owner: str) -> None:
    """Raise :class:`ConfigError` unless ``options`` fit ``declared``: known keys, each of
    its type (and among its choices), every required key given. ``where`` is the table
    (``listen.udp``); ``owner`` names whose options they are, for the message."""
    by_name = {option.name: option for option in declared}
    unknown = sorted(set(options) - set(by_name))
    if unknown:
        allowed = ", ".join(by_name) or "none"
        hint = _did_you_mean(unknown[0], by_name)
        raise ConfigError(
            f"[{where}] {', '.join(unknown)}: unknown option{'s' if len(unknown) > 1 else ''}"
            f"; allowed: {allowed} ({owner}){hint}")
    for key, value in options.items():
        problem = _type_problem(by_name[key], value)
        if problem:
            raise ConfigError(f"[{where}] {key} = {value!r}: {problem}")
    missing = [o.name for o in declared if o.required and o.name not in options]
    if missing:
        raise ConfigError(f"[{where}] {', '.join(missing)}: required by {owner}, and not given")


_TYPE_WORDS: Mapping[str, str] = {
    "integer": "an integer", "number": "a number", "boolean": "true or false",
    "string": "a string", "path": "a file path (a string)",
    "paths": "a file path or an array of them", "table": "a table", "array": "an array",
    "framing": "a StreamFraming, which the node sets"}


def _type_problem(option: PluginOption, value: object) -> str:
    """What is wrong with ``value`` for ``option`` (empty if nothing)."""
    kind = option.type
    if kind == "integer":
        fits = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        fits = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "boolean":
        fits = isinstance(value, bool)
    elif kind in ("string", "path"):
        fits = isinstance(value, str)
    elif kind == "paths":
        fits = isinstance(value, str) or (
            isinstance(value, list | tuple) and all(isinstance(item, str) for item in value))
    elif kind == "table":
        fits = isinstance(value, Mapping)
    elif kind == "framing":
        fits = isinstance(value, StreamFraming) and not isinstance(value, type)
    else:
        fits = isinstance(value, list | tuple)
    if not fits:
        return f"must be {_TYPE_WORDS[kind]}"
    if option.choices and value not in option.choices:
        return f"must be one of {', '.join(repr(choice) for choice in option.choices)}"
    return ""


def _did_you_mean(word: str, known: Sequence[str] | Mapping[str, object]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class Codec(abc.ABC):
    """Encodes messages to bytes and decodes them back.

    The data model every codec must carry: None, bool, int (signed and unsigned
    64-bit), float, str, bytes, list (tuples arrive as lists), dict with str
    keys, and message types registered with :func:`relay_core.message`.
    """

    name: ClassVar[str]
    """Short ASCII name written into every frame, for example ``"msgpack"``."""

    options: ClassVar[tuple[PluginOption, ...] | None] = None
    """The keys of its config table, checked by the node at start; None: the constructor's
    keyword parameters are the options (checked against its signature)."""

    path_options: ClassVar[frozenset[str]] = frozenset()
    """Options whose values are file paths (a string, or an array of strings); a relative
    one from a config file is joined to that file's directory before it reaches the plugin."""

    @abc.abstractmethod
    def encode(self, obj: object) -> bytes:
        """Return the encoding of ``obj``; raise ``EncodeError`` for values outside the model."""

    @abc.abstractmethod
    def decode(self, data: bytes) -> object:
        """Return the object ``data`` encodes; raise ``DecodeError`` for anything invalid."""


class Compressor(abc.ABC):
    """Compresses frame payloads."""

    name: ClassVar[str]
    """Short ASCII name written into every compressed frame, for example ``"zstd"``."""

    options: ClassVar[tuple[PluginOption, ...] | None] = None
    """The keys of its config table, checked by the node at start; None: the constructor's
    keyword parameters are the options (checked against its signature)."""

    path_options: ClassVar[frozenset[str]] = frozenset()
    """Options whose values are file paths (a string, or an array of strings); a relative
    one from a config file is joined to that file's directory before it reaches the plugin."""

    @abc.abstractmethod
    def compress(self, data: bytes) -> bytes | None:
        """Return the compressed form, or None when ``data`` should travel uncompressed
        (too small to gain, or no gain)."""

    @abc.abstractmethod
    def decompress(self, data: bytes, max_output_size: int) -> bytes:
        """Return the original bytes.

        Raise ``DecompressionLimitExceeded`` rather than produce more than
        ``max_output_size`` bytes, and ``DecompressionError`` for corrupt input.
        """


@runtime_checkable
class PacketSplitter(Protocol):
    """Cuts one byte stream back into the packets its :class:`StreamFraming` wrote.

    One per connection, fed every chunk read, in order, whatever the chunking. It
    holds at most one unfinished packet, of at most the limit it was made with, and
    refuses a longer one before buffering more of it. After a :class:`MalformedFrame`
    (garbage, or a packet over the limit) the stream cannot be resynchronised: every
    later call raises it again, and the transport closes the connection.
    """

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add ``chunk``; return every packet now whole, in order.

        Raise :class:`MalformedFrame` for bytes the framing cannot cut, or a packet over
        the limit. Packets whole before the fault in the same chunk are returned first,
        and the fault is raised by the next call (:attr:`failed` is True meanwhile).
        """

    def end(self) -> None:
        """The stream has ended: raise :class:`MalformedFrame` for a fault not raised yet,
        or if the framing holds that a stream must not end inside a packet (heph-json
        does; the length prefix leaves a cut packet to its lost connection)."""

    @property
    def buffered(self) -> int:
        """Bytes held for the unfinished packet: what the transport charges to its input
        budget."""

    @property
    def failed(self) -> bool:
        """True once the stream was found malformed: every later call raises."""

    def discard(self) -> None:
        """Let go of the unfinished packet: its connection is gone, and nothing more is fed."""


@runtime_checkable
class StreamFraming(Protocol):
    """How packets travel on a byte stream: each written after the one before, and cut
    back out by a :class:`PacketSplitter`.

    The node hands a stream transport its framing as the value of the ``framing``
    option: the constructor's, for the connections it accepts, and in the options of
    :meth:`Transport.prepare`, for that destination's connection; absent, a transport
    uses :class:`~relay_core.LengthPrefixFraming`. An option value rather than a new
    parameter of ``listen`` or ``prepare``, so that every transport's signatures stay
    as third parties implement them, and a transport never maps a name to a format.
    """

    @property
    def name(self) -> str:
        """What the framing is called in messages: ``"net-relay"``, ``"heph-json"``."""

    @property
    def overhead(self) -> int:
        """Bytes the framing adds to each packet on the stream, at most (for queue sizes)."""

    def frame(self, packet: bytes) -> bytes:
        """``packet`` as it is written on the stream: one buffer, so one write."""

    @property
    def refusal(self) -> Callable[[bytes], str | None] | None:
        """Says why this framing cannot carry a packet (words that follow "cannot send to
        X: "), or None when it can; a transport asks it of each packet before taking it.
        None itself: the framing carries every packet of 1 byte or more, and a transport
        asks nothing per packet."""

    def splitter(self, max_packet_size: int) -> PacketSplitter:
        """A new splitter for one connection, refusing a packet over ``max_packet_size``
        (or over a lower limit of the framing's own)."""


class TransportEvents(Protocol):
    """What a transport reports to its node."""

    def packet_received(self, packet: bytes, source: HostPort) -> asyncio.Future[None] | None:
        """A whole packet arrived. ``source`` is accepted by ``send`` for the reply.

        None means the node took the packet. A future means the node cannot take
        more from ``source`` until the future completes (an actor's mailbox is
        full): a reliable transport then stops reading that connection until
        then, so its own flow control slows the sender. It still hands over, in
        order, the packets it had already read; the node queues them behind the
        waiting one. An unreliable transport ignores the return value.
        """

    def send_failed(self, destination: HostPort | None, error: BaseException) -> None:
        """A send failed after ``send`` returned (ICMP unreachable, full buffer, reset).

        An ``error`` that is a ``PeerUnreachable``, or an OSError whose errno says
        refused or unreachable, fails the node's calls waiting on ``destination``.
        """

    def packets_unsent(self, destination: HostPort, packets: Sequence[bytes],
                       reason: UnsentReason) -> None:
        """``packets``, which ``send`` accepted for ``destination``, will never be written.

        The node counts the messages they carried under ``reason``. A transport
        reports here what it dropped from its own queues; a failure it cannot
        pin to packets (a connection lost with bytes in flight) goes to
        :meth:`send_failed`.
        """

    def input_malformed(self, source: HostPort, error: MalformedFrame) -> None:
        """A connection from ``source`` sent bytes that cannot be cut into packets (a
        length over the limit, say); the transport closed it. The node counts it
        ``malformed``."""

    def connection_dropped(self, source: HostPort, reason: ConnectionDropReason) -> None:
        """A listener refused a connection from ``source``, closed it, or dropped its
        unfinished handshake, for a limit: past its connection cap, out of descriptors
        (``source`` is then the listener's own address), a handshake or idle timeout, past
        its buffered-input budget, or past its handshake cap (quic). The node counts it
        under ``reason``."""


class Transport(abc.ABC):
    """Moves packets for one URL scheme.

    A node creates one instance per scheme it uses, calls :meth:`listen` for
    each configured listener, :meth:`prepare` before the first send to a new
    destination, and :meth:`send` for every packet. Received packets go to
    ``events.packet_received`` on the event loop thread. A stream transport is
    handed its :class:`StreamFraming` as the value of its ``framing`` option.
    """

    scheme: ClassVar[str]
    """URL scheme this transport serves, for example ``"udp"``."""

    reliable: ClassVar[bool]
    """True for stream transports (ordered, no loss, no duplication). False tells the node
    that packets may be lost, duplicated or reordered: its duplicate window then drops
    repeats, a full mailbox drops (counted) instead of holding the sender back, and a
    peer's ``fallback`` must not use it. The kit then checks a burst past the socket
    buffer instead of in-order delivery."""

    options: ClassVar[tuple[PluginOption, ...] | None] = None
    """The keys of ``[listen.SCHEME]`` the constructor takes, checked by the node at start;
    None: the constructor's keyword parameters are the options."""

    peer_options: ClassVar[tuple[PluginOption, ...]] = ()
    """The transport keys a ``[peers.NAME]`` table with this scheme may hold; the default
    :meth:`check_peer_options` accepts exactly these."""

    path_options: ClassVar[frozenset[str]] = frozenset()
    """Listener and peer options whose values are file paths (a string, or an array of
    strings); a relative one from a config file is joined to that file's directory before
    it reaches the constructor, :meth:`check_peer_options` or :meth:`prepare`."""

    max_packet_size: int
    """The largest packet :meth:`send` accepts."""

    batch_size: int
    """The node coalesces frames to one destination into packets up to this size."""

    def __init__(self, events: TransportEvents) -> None:
        self.events = events

    @abc.abstractmethod
    async def listen(self, host: str, port: int) -> HostPort:
        """Start receiving on host:port (port 0 picks one); return what was bound."""

    @classmethod
    def check_peer_options(cls, options: Mapping[str, object], where: str) -> None:
        """Raise ``ConfigError`` unless ``options`` (the extra keys of a ``[peers.NAME]``
        table whose address has this scheme; ``where`` names that table) are acceptable.

        The default accepts the keys declared in :attr:`peer_options`, of their types;
        a transport with further rules (TLS files that go together) overrides this.
        """
        check_declared(cls.peer_options, options, where, f"{cls.scheme} peers")

    @abc.abstractmethod
    async def prepare(self, host: str, port: int,
                      options: Mapping[str, object] | None = None) -> HostPort:
        """Get ready to send to host:port (resolve names, open a socket or a
        connection) and return the destination to pass to :meth:`send`.

        ``options`` are the peer's transport options, already checked by
        :meth:`check_peer_options`.
        """

    def packet_limits(self, destination: HostPort) -> tuple[int, int]:
        """(batch size, largest packet) for ``destination``, once prepared or heard from.

        The default is the transport-wide ``batch_size`` and ``max_packet_size``;
        a transport whose limits differ per destination (QUIC datagram mode)
        overrides this, and the node sizes that destination's packets to fit.
        """
        return self.batch_size, self.max_packet_size

    def waiting(self, destination: HostPort) -> int:
        """How many packets sent to ``destination`` this transport still holds, not yet
        handed to the network (waiting for a connection or a handshake).

        The default, 0, fits a transport whose ``send`` hands each packet over at once.
        ``net-relay send`` waits for this to reach 0 before it exits.
        """
        return 0

    def receive_drops(self) -> int:
        """Packets the operating system dropped before this transport could read them
        (a full socket receive buffer), since it started; 0 where the platform does not say.

        The node reports it per scheme in its stats; it is never read per packet.
        """
        return 0

    @abc.abstractmethod
    def send(self, destination: HostPort, packet: bytes) -> asyncio.Future[None] | None:
        """Send one packet without blocking.

        Raise ``MessageTooLarge`` or ``TransportError`` for what is known at once;
        report later failures through ``events.send_failed`` (a peer that cannot be
        reached, refused, unreachable or failing TLS, as ``PeerUnreachable``, whose
        ``retry_after`` says how long the node should hold further sends to it), and
        packets dropped unsent through ``events.packets_unsent``.
        The node looks this method up once per peer link.

        A stream transport returns a future when what it holds for the
        destination has passed its queue limit: the node then holds back the
        senders that can wait (an awaited ``send``) until the future completes,
        and ``try_send`` raises ``LinkBusy``. It still takes the packets of
        sends that cannot wait, up to a hard limit of its own. None means go on.
        """

    async def flush(self) -> None:
        """Return once everything ``send`` accepted has left, or cannot.

        The node awaits this when it closes, for at most its grace period, before
        :meth:`close`. "Left" means handed to the kernel on a connection that is
        then closed in order, or, where the transport can tell, acknowledged by the
        peer. The default returns at once: a datagram transport holds nothing.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop listening, close every connection, release every resource, and report
        what was still queued through ``events.packets_unsent`` (reason
        ``"closed_unsent"``)."""
