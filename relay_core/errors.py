"""Every exception net-relay raises, in one tree rooted at :class:`RelayError` (public).

::

    RelayError
    ├── ConfigError (ValueError)            bad config file, key, value or option
    │   └── InvalidAddress                  a URL that is not SCHEME://HOST:PORT[/ACTOR]
    ├── PluginError
    │   ├── PluginConflict                  two plugins claim one name
    │   └── UnknownPlugin (LookupError)     no installed plugin has that name
    ├── CodecError
    │   ├── EncodeError (TypeError)         the object is outside the data model
    │   └── DecodeError (ValueError)        the bytes are not a valid encoding
    ├── CompressionError
    │   └── DecompressionError (ValueError) corrupt input
    │       └── DecompressionLimitExceeded  output would pass max_output_size
    ├── MalformedFrame (ValueError)         bytes that are not a wire-format packet
    │   ├── UnsupportedVersion              a packet of a wire version we do not speak
    │   ├── ChecksumMismatch                a packet damaged in transit
    │   └── Unauthenticated                 a sealed packet that does not verify
    ├── MessageTooLarge (ValueError)        the encoded message exceeds a limit
    ├── TransportError (OSError)            a transport could not do what was asked
    │   └── PeerUnreachable (ConnectionError)  refused, ICMP unreachable, TLS failed,
    │                                          or a sealed handshake unanswered
    ├── ActorError
    │   ├── MailboxFull                     try_send on a full mailbox
    │   │   └── LinkBusy                    try_send on a link whose queue is full
    │   ├── ActorStopped                    the actor (or its node) is gone
    │   └── ActorExists                     spawn() with a name already taken
    ├── RpcError
    │   ├── RpcTimeout (TimeoutError)       no reply before the deadline
    │   ├── RpcCancelled                    the remote side gave the request up
    │   ├── RemoteError                     the handler raised; carries type and message
    │   ├── UnknownActor (LookupError)      no actor of that name at the target node
    │   ├── UnsupportedCodec                the target node lacks the frame's codec
    │   ├── Overloaded                      the target actor's mailbox was full
    │   └── UnexpectedReply (TypeError)     a reply not of the type rpc(expect=) named
    └── AppError                            ``net-relay run`` could not load or set up
                                            the user's MODULE:FUNCTION

Each error mixes in the builtin it resembles, so ``except ValueError`` keeps
working for callers that do not know this library. Errors raised by msgpack,
cbor2, zstandard, aioquic or the socket layer are converted at the edge of the
plugin that called them: users never have to catch another library's exception.
"""

from __future__ import annotations

__all__ = [
    "ActorError",
    "ActorExists",
    "ActorStopped",
    "AppError",
    "ChecksumMismatch",
    "CodecError",
    "CompressionError",
    "ConfigError",
    "DecodeError",
    "DecompressionError",
    "DecompressionLimitExceeded",
    "EncodeError",
    "InvalidAddress",
    "LinkBusy",
    "MailboxFull",
    "MalformedFrame",
    "MessageTooLarge",
    "Overloaded",
    "PeerUnreachable",
    "PluginConflict",
    "PluginError",
    "RelayError",
    "RemoteError",
    "RpcCancelled",
    "RpcError",
    "RpcTimeout",
    "TransportError",
    "Unauthenticated",
    "UnexpectedReply",
    "UnknownActor",
    "UnknownPlugin",
    "UnsupportedCodec",
    "UnsupportedVersion",
]


class RelayError(Exception):
    """Base of every exception raised by net-relay."""


class ConfigError(RelayError, ValueError):
    """A configuration key, value or plugin option is not acceptable."""


class InvalidAddress(ConfigError):
    """An address that does not parse as ``SCHEME://HOST:PORT[/ACTOR]``."""


class PluginError(RelayError):
    """A plugin could not be loaded, registered or found."""


class PluginConflict(PluginError):
    """Two plugins register a codec, compressor or transport under one name."""


class UnknownPlugin(PluginError, LookupError):
    """No installed plugin provides the codec, compressor or transport asked for."""


class CodecError(RelayError):
    """A codec could not encode or decode a message."""


class EncodeError(CodecError, TypeError):
    """The object holds a value the codec's data model does not allow."""


class DecodeError(CodecError, ValueError):
    """The bytes are not a valid encoding for the codec."""


class CompressionError(RelayError):
    """A compressor could not compress or decompress."""


class DecompressionError(CompressionError, ValueError):
    """The compressed input is corrupt or uses a dictionary we do not have."""


class DecompressionLimitExceeded(DecompressionError):
    """Decompressing would produce more than the allowed number of bytes."""


class MalformedFrame(RelayError, ValueError):
    """Bytes that do not parse as a wire-format packet or frame."""


class UnsupportedVersion(MalformedFrame):
    """A packet of a wire-format version this node does not speak."""


class ChecksumMismatch(MalformedFrame):
    """A packet whose checksum does not match its bytes: damaged on the way."""


class Unauthenticated(MalformedFrame):
    """A sealed packet that does not verify: forged, damaged, or under a key we do not hold."""


class MessageTooLarge(RelayError, ValueError):
    """An encoded message is larger than the transport or the node allows.

    Raise it as ``MessageTooLarge(size, limit, hint="")``: the size in bytes, the limit
    it passed, and what the sender can do about it; the message is made from them.
    """

    def __init__(self, size: int, limit: int | None = None, hint: str = "") -> None:
        if limit is None or not all(isinstance(n, int) for n in (size, limit)):
            # The natural MessageTooLarge("too big") must not end in a bare TypeError.
            raise TypeError(
                "MessageTooLarge(size, limit, hint='') takes the size in bytes and the limit it"
                " passed (e.g. MessageTooLarge(len(packet), self.max_packet_size)), and"
                f" optionally a hint; got {(size, limit)!r}")
        self.size = size
        self.limit = limit
        text = f"message of {size} bytes exceeds the limit of {limit} bytes"
        super().__init__(f"{text}; {hint}" if hint else text)


class TransportError(RelayError, OSError):
    """A transport could not bind, connect or send."""


class PeerUnreachable(TransportError, ConnectionError):
    """The peer could not be reached: the connection was refused, an ICMP error said
    nothing listens there, the TLS handshake failed (its certificate did not verify),
    or a sealed peer answered none of the hellos sent to learn its incarnation.

    ``address`` is the peer's URL (``tcp://127.0.0.1:9``), ``reason`` what the OS
    or TLS said, ``errno`` the OS error number when there is one. ``retry_after``
    is how long, in seconds, the peer counts as unreachable: until then ``send``
    and ``rpc`` to it raise this error at once, without trying (0 for a datagram
    transport, whose next packet is tried anyway; see docs/protocol.md).
    """

    def __init__(self, address: str, reason: str, *, errno: int | None = None,
                 retry_after: float = 0.0) -> None:
        super().__init__(f"{address} is unreachable: {reason}")
        self.errno = errno
        self.address = address
        self.reason = reason
        self.retry_after = retry_after

    def again(self) -> PeerUnreachable:
        """A fresh copy, to raise for another call (an exception raised twice keeps
        growing its traceback)."""
        return PeerUnreachable(self.address, self.reason, errno=self.errno,
                               retry_after=self.retry_after)


class ActorError(RelayError):
    """An actor could not take a message."""


class MailboxFull(ActorError):
    """``try_send`` found the mailbox full."""


class LinkBusy(MailboxFull):
    """``try_send`` found the queue of a link to the actor full: a stream link's (tcp,
    quic streams), or a sealed link's while it waits for its handshake's answer.

    An awaited ``send`` waits instead, as it waits for room in a local mailbox.
    A ``MailboxFull``, so code that handles a full mailbox handles this too.
    """


class ActorStopped(ActorError):
    """The actor, or the node it lived on, has stopped."""


class ActorExists(ActorError, ValueError):
    """An actor with that name is already registered on the node."""


class RpcError(RelayError):
    """An RPC did not produce the reply its caller asked for."""


class RpcTimeout(RpcError, TimeoutError):
    """No reply arrived before the deadline."""


class RpcCancelled(RpcError):
    """The request was cancelled before a reply was produced."""


class RemoteError(RpcError):
    """The remote handler failed; ``remote_type`` names its exception type.

    ``remote_traceback`` is the formatted remote traceback when the remote node
    is configured to send it (``[node] send_tracebacks = true``), else None.
    """

    def __init__(self, remote_type: str, remote_message: str,
                 remote_traceback: str | None = None) -> None:
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        super().__init__(f"{remote_type}: {remote_message}")


class UnknownActor(RpcError, LookupError):
    """The target node has no actor (and no router) for the name."""


class UnsupportedCodec(RpcError):
    """The target node has no plugin for the codec or compressor the frame named."""


class Overloaded(RpcError):
    """The target actor's mailbox was full, so the request was not queued."""


class UnexpectedReply(RpcError, TypeError):
    """A reply that is not an instance of the type ``rpc(..., expect=T)`` named.

    ``reply`` holds what came (so a caller can still look at it), ``expected``
    the type asked for, ``address`` the actor that answered.
    """

    def __init__(self, reply: object, expected: type, address: str) -> None:
        self.reply = reply
        self.expected = expected
        self.address = address
        shown = repr(reply)
        if len(shown) > 80:
            shown = f"{shown[:77]}..."
        super().__init__(
            f"{address} replied with a {type(reply).__qualname__} ({shown}), not the "
            f"{expected.__qualname__} that expect={expected.__qualname__} asked for"
        )


class AppError(RelayError):
    """``net-relay run MODULE:FUNCTION``: the module did not import, it has no such
    function, or the function raised while setting the node up."""
