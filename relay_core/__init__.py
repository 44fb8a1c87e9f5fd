"""net-relay: actor messages between processes and machines.

The public surface is exactly ``__all__`` (and ``__version__``), and the modules ``errors``,
``interfaces``, ``hookspecs`` and ``testing`` (tests/test_public_api.py keeps
``__all__`` in step). Everything else may change without notice: the layer
folders ``protocol`` (sans-IO), ``observe``, ``config``, ``plugins``, ``faults``,
``runtime`` (asyncio) and ``tools`` (the command line), whose rules
tests/test_layers.py keeps.
"""

from __future__ import annotations

from . import _compiled  # noqa: F401  (first: it decides where the compiled modules come from)
from ._version import __version__ as __version__
from .config.address import Address, parse_address
from .config.node_config import ListenConfig, NodeConfig, PeerConfig
from .errors import (
    ActorError,
    ActorExists,
    ActorStopped,
    ChecksumMismatch,
    CodecError,
    CompressionError,
    ConfigError,
    DecodeError,
    DecompressionError,
    DecompressionLimitExceeded,
    EncodeError,
    InvalidAddress,
    LinkBusy,
    MailboxFull,
    MalformedFrame,
    MessageTooLarge,
    Overloaded,
    PeerUnreachable,
    PluginConflict,
    PluginError,
    RelayError,
    RemoteError,
    RpcCancelled,
    RpcError,
    RpcTimeout,
    TransportError,
    Unauthenticated,
    UnexpectedReply,
    UnknownActor,
    UnknownPlugin,
    UnsupportedCodec,
    UnsupportedVersion,
)
from .faults.adapter import FaultProfile, FaultyTransport
from .hookspecs import hookimpl
from .interfaces import (
    Codec,
    Compressor,
    ConnectionDropReason,
    HostPort,
    PacketSplitter,
    PluginOption,
    StreamFraming,
    Transport,
    TransportEvents,
    UnsentReason,
)
from .observe.metrics import MetricsExporter, metrics_available
from .observe.ratelog import RateLimitedLog
from .observe.snapshot import NodeStats
from .plugins.registry import PluginFailure, PluginInfo, PluginRegistry
from .protocol.messages import MessageTypes, UnknownMessage, message, message_types
from .protocol.stream_framings import HephJsonFraming, LengthPrefixFraming
from .runtime.actors import ActorRef
from .runtime.heph_reply import HephMessage
from .runtime.loop import run
from .runtime.node import ActorContext, Node, Router
from .runtime.rpc import RequestIdFilter, Rpc, current_request_id

__all__ = [
    "ActorContext",
    "ActorError",
    "ActorExists",
    "ActorRef",
    "ActorStopped",
    "Address",
    "ChecksumMismatch",
    "Codec",
    "CodecError",
    "CompressionError",
    "Compressor",
    "ConfigError",
    "ConnectionDropReason",
    "DecodeError",
    "DecompressionError",
    "DecompressionLimitExceeded",
    "EncodeError",
    "FaultProfile",
    "FaultyTransport",
    "HephJsonFraming",
    "HephMessage",
    "HostPort",
    "InvalidAddress",
    "LengthPrefixFraming",
    "LinkBusy",
    "ListenConfig",
    "MailboxFull",
    "MalformedFrame",
    "MessageTooLarge",
    "MessageTypes",
    "MetricsExporter",
    "Node",
    "NodeConfig",
    "NodeStats",
    "Overloaded",
    "PacketSplitter",
    "PeerConfig",
    "PeerUnreachable",
    "PluginConflict",
    "PluginError",
    "PluginFailure",
    "PluginInfo",
    "PluginOption",
    "PluginRegistry",
    "RateLimitedLog",
    "RelayError",
    "RemoteError",
    "RequestIdFilter",
    "Router",
    "Rpc",
    "RpcCancelled",
    "RpcError",
    "RpcTimeout",
    "StreamFraming",
    "Transport",
    "TransportError",
    "TransportEvents",
    "Unauthenticated",
    "UnexpectedReply",
    "UnknownActor",
    "UnknownMessage",
    "UnknownPlugin",
    "UnsentReason",
    "UnsupportedCodec",
    "UnsupportedVersion",
    "current_request_id",
    "hookimpl",
    "message",
    "message_types",
    "metrics_available",
    "parse_address",
    "run",
]
