"""The ``types`` option the built-in codecs share: which registry maps messages to type names.

Checked when the codec is made, so a wrong value stops a node at start rather
than failing its first message.
"""

from __future__ import annotations

from relay_core import ConfigError, MessageTypes, message_types


def types_option(types: object) -> MessageTypes:
    """``types``, or the process-wide registry for None; ConfigError for anything else."""
    if types is None:
        return message_types
    if not isinstance(types, MessageTypes):
        raise ConfigError(
            f"types = {types!r} is not allowed: a relay_core.MessageTypes registry, given in "
            "Python (registry.codec(name, types=...)); a config file cannot set it, and "
            "without it the codec uses the registry @message fills")
    return types
