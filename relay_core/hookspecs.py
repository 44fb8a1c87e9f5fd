"""The hooks a net-relay plugin implements.

A plugin is a module (or object) registered under the ``net_relay`` entry point
group. It implements any of these hooks with :data:`hookimpl`::

    from relay_core import hookimpl

    @hookimpl
    def net_relay_codecs():
        return [MyCodec]

Each hook returns the plugin classes it provides; a node instantiates them with
the options from its config file.
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from .interfaces import Codec, Compressor, Transport

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "net_relay"
"""The pluggy project name, which is also the entry point group."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def net_relay_codecs() -> Sequence[type[Codec]]:
    """Return the codec classes this plugin provides."""
    raise NotImplementedError


@hookspec
def net_relay_compressors() -> Sequence[type[Compressor]]:
    """Return the compressor classes this plugin provides."""
    raise NotImplementedError


@hookspec
def net_relay_transports() -> Sequence[type[Transport]]:
    """Return the transport classes this plugin provides."""
    raise NotImplementedError
