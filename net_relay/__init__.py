"""net-relay under its distribution's name: ``import net_relay`` is ``import relay_core``.

The distribution installs three packages, ``relay_core`` (the library),
``relay_codecs`` and ``relay_transports`` (the built-in plugins); this one
re-exports relay_core's public names, the very same objects, so that
``from net_relay import Node`` and ``from relay_core import Node`` are one
class. The public modules stay where they are: ``relay_core.errors``,
``relay_core.interfaces``, ``relay_core.hookspecs`` and ``relay_core.testing``.
"""

from relay_core import *  # exactly relay_core.__all__
from relay_core import __all__ as __all__
from relay_core import __version__ as __version__
