"""The hooks a net-relay plugin implements.

A plugin is a module (or object) registered under the ``net_relay`` entry point
group. It implements any of these hooks with :data:`hookimpl`::

    from relay_core import hookimpl

    @hookimpl
    def net_relay_codecs():
        return [MyCodec]

Each hook returns the plugin classes it provides; a node instantiates them with
the options from its config file.

:data:`PLUGIN_API_VERSION` says which contract this net-relay offers plugins; a
plugin that needs a newer one can refuse to load, and is then listed as
unavailable with its reason::

    from relay_core.hookspecs import PLUGIN_API_VERSION

    if PLUGIN_API_VERSION < 2:
        raise ImportError(f"net-relay-foo needs plugin API 2, this net-relay has {PLUGIN_API_VERSION}")
"""

from __future__ import annotations

from collections.abc import Sequence

import pluggy

from .interfaces import Codec, Compressor, Transport

__all__ = ["PLUGIN_API_VERSION", "PROJECT_NAME", "hookimpl", "hookspec"]

PLUGIN_API_VERSION = 2
"""The version of the contract between net-relay and its plugins: the hooks, the Codec,
Compressor and Transport interfaces, and the kit. It grows by one whenever that contract
changes, compatibly or not, so a plugin can require the version whose features it uses.
Version 1 was the contract before it was numbered; 2 added declared options
(``PluginOption``, ``options``, ``peer_options``)."""

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
