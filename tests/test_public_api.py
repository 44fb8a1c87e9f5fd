"""The public API changes only on purpose: __all__ is the contract."""

from __future__ import annotations

import relay_core
from relay_core import RelayError

EXPECTED_PUBLIC_NAMES = {
    "ActorContext", "ActorError", "ActorExists", "ActorRef", "ActorStopped", "Address", "ChecksumMismatch", "Codec",
    "CodecError", "CompressionError", "Compressor", "ConfigError", "ConnectionDropReason",
    "DecodeError",
    "DecompressionError", "DecompressionLimitExceeded", "EncodeError", "FaultProfile",
    "FaultyTransport", "HostPort",
    "InvalidAddress", "LinkBusy", "ListenConfig", "MailboxFull", "MalformedFrame", "MessageTooLarge",
    "MessageTypes", "MetricsExporter", "Node", "NodeConfig", "NodeStats", "Overloaded", "PeerConfig",
    "PeerUnreachable",
    "PluginConflict", "PluginError", "PluginFailure", "PluginInfo", "PluginOption", "PluginRegistry",
    "RateLimitedLog", "RelayError", "RemoteError", "RequestIdFilter", "Router", "Rpc", "RpcCancelled", "RpcError",
    "RpcTimeout", "Transport", "TransportError", "TransportEvents", "UnknownActor", "UnsentReason",
    "Unauthenticated", "UnexpectedReply", "UnknownMessage", "UnknownPlugin", "UnsupportedCodec", "UnsupportedVersion",
    "current_request_id", "hookimpl", "message", "message_types", "metrics_available", "parse_address",
    "run",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(relay_core.__all__) == EXPECTED_PUBLIC_NAMES


def test_every_public_name_exists() -> None:
    missing = [name for name in relay_core.__all__ if not hasattr(relay_core, name)]
    assert missing == []


def test_every_public_exception_derives_from_relay_error() -> None:
    exceptions = [getattr(relay_core, name) for name in relay_core.__all__
                  if isinstance(getattr(relay_core, name), type)
                  and issubclass(getattr(relay_core, name), BaseException)]
    assert len(exceptions) > 20
    assert all(issubclass(exc, RelayError) for exc in exceptions)


def test_net_relay_is_relay_core_under_the_distribution_s_name() -> None:
    import net_relay

    assert net_relay.__all__ == relay_core.__all__
    assert all(getattr(net_relay, name) is getattr(relay_core, name) for name in relay_core.__all__)
    assert net_relay.__version__ == relay_core.__version__


def test_the_version_is_a_public_dotted_number() -> None:
    parts = relay_core.__version__.split(".")
    assert len(parts) == 3 and all(part.isdigit() for part in parts)
