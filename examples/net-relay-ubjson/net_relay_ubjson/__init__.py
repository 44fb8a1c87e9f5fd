"""net-relay-ubjson: a UBJSON codec plugin for net-relay, in pure Python.

Installing the distribution is all it takes: net-relay finds the plugin through
its ``net_relay`` entry point. Choose it with ``codec = "ubjson"`` in a node's
config file, or for one peer.
"""

from __future__ import annotations

from ._codec import UbjsonCodec

__all__ = ["UbjsonCodec"]
