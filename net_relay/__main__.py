"""``python -m net_relay``: the ``net-relay`` command line."""

import sys

from relay_core.tools.cli import main

sys.exit(main())
