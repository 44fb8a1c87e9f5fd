"""net-relay: actor messages between processes and machines.

The public surface is exactly ``__all__``; everything else lives in private
``_name`` modules and may change without notice.
"""

from __future__ import annotations

from ._errors import *  # noqa: F403
from ._errors import __all__ as _error_names
from ._interfaces import Codec, Compressor, HostPort, Transport, TransportEvents
from .hookspecs import hookimpl

__all__ = [
    *_error_names,
    "Codec",
    "Compressor",
    "HostPort",
    "Transport",
    "TransportEvents",
    "hookimpl",
]
