"""net-relay: actor messages between processes and machines.

The public surface is exactly ``__all__``; everything else lives in private
``_name`` modules and may change without notice (tests/test_public_api.py
keeps the two in step).
"""

from __future__ import annotations

from . import _compiled  # noqa: F401  (first: it decides where the compiled modules come from)
from ._actors import ActorContext, ActorRef
from ._address import Address, parse_address
from ._config import ListenConfig, NodeConfig, PeerConfig
from ._faults import FaultProfile, FaultyTransport
from ._loop import run
from ._messages import MessageTypes, UnknownMessage, message, message_types
from ._metrics import MetricsExporter, metrics_available
from ._node import Node, Router
from ._ratelog import RateLimitedLog
from ._registry import PluginFailure, PluginInfo, PluginRegistry
from ._rpc import RequestIdFilter, Rpc, current_request_id
from ._stats import NodeStats
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
    UnknownActor,
    UnknownPlugin,
    UnsupportedCodec,
    UnsupportedVersion,
)
from .hookspecs import hookimpl
from .interfaces import (
    Codec,
    Compressor,
    ConnectionDropReason,
    HostPort,
    Transport,
    TransportEvents,
    UnsentReason,
)

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
    "HostPort",
    "InvalidAddress",
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
    "PeerConfig",
    "PeerUnreachable",
    "PluginConflict",
    "PluginError",
    "PluginFailure",
    "PluginInfo",
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
    "Transport",
    "TransportError",
    "TransportEvents",
    "Unauthenticated",
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
