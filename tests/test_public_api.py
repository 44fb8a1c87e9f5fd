"""The public API changes only on purpose: __all__ is the contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import relay_core
from relay_core import RelayError
from relay_core._compiled import PURE_PYTHON_ENV

EXPECTED_PUBLIC_NAMES = {
    "ActorContext", "ActorError", "ActorExists", "ActorRef", "ActorStopped", "Address", "ChecksumMismatch", "Codec",
    "CodecError", "CompressionError", "Compressor", "ConfigError", "ConnectionDropReason",
    "DecodeError",
    "DecompressionError", "DecompressionLimitExceeded", "EncodeError", "FaultProfile",
    "FaultyTransport", "HephJsonFraming", "HephMessage", "HostPort",
    "InvalidAddress", "LengthPrefixFraming", "LinkBusy", "ListenConfig", "MailboxFull", "MalformedFrame", "MessageTooLarge",
    "MessageTypes", "MetricsExporter", "Node", "NodeConfig", "NodeStats", "Overloaded",
    "PacketSplitter", "PeerConfig",
    "PeerUnreachable",
    "PluginConflict", "PluginError", "PluginFailure", "PluginInfo", "PluginOption", "PluginRegistry",
    "RateLimitedLog", "RelayError", "RemoteError", "RequestIdFilter", "Router", "Rpc", "RpcCancelled", "RpcError",
    "RpcTimeout", "StreamFraming", "Transport", "TransportError", "TransportEvents", "UnknownActor", "UnsentReason",
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


# -- the same documentation in every build -------------------------------------

DOCUMENTATION_OF_THE_PUBLIC_NAMES = r"""
import inspect, json, sys
import relay_core

def described(obj):
    try:
        signature = str(inspect.signature(obj))
    except (TypeError, ValueError):
        signature = None
    return {"doc": inspect.getdoc(obj), "signature": signature}

found = {}
for name in relay_core.__all__:
    obj = getattr(relay_core, name)
    if not (inspect.isclass(obj) or inspect.isroutine(obj)):
        continue
    found[name] = described(obj)
    if inspect.isclass(obj) and not issubclass(obj, BaseException):
        for attribute, member in vars(obj).items():
            if attribute.startswith("_") and attribute != "__init__":
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if inspect.isroutine(member) or isinstance(member, property):
                target = member.fget if isinstance(member, property) else member
                found[f"{name}.{attribute}"] = described(target)
print(json.dumps(found, sort_keys=True))
"""


def documentation_of_the_public_names(*, pure: bool) -> dict[str, dict[str, str | None]]:
    """Each public class and function of relay_core, and each public method or property
    of those classes: its docstring and signature, as ``help()`` shows them."""
    env = {key: value for key, value in os.environ.items() if key != PURE_PYTHON_ENV}
    if pure:
        env[PURE_PYTHON_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", DOCUMENTATION_OF_THE_PUBLIC_NAMES], env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    found: dict[str, dict[str, str | None]] = json.loads(done.stdout)
    return found


def test_public_names_show_the_same_docstrings_and_signatures_in_every_build() -> None:
    as_built = documentation_of_the_public_names(pure=False)
    from_source = documentation_of_the_public_names(pure=True)
    assert {"Rpc.handle", "Rpc.respond", "RequestIdFilter", "current_request_id",
            "NodeStats"} <= set(from_source)
    differing = {name: {"as built": as_built.get(name), "source": described}
                 for name, described in from_source.items() if as_built.get(name) != described}
    assert differing == {}


def test_the_public_classes_and_functions_are_documented() -> None:
    undocumented = sorted(name for name, described in
                          documentation_of_the_public_names(pure=True).items()
                          if "." not in name and not described["doc"])
    assert undocumented == []
