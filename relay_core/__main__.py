"""``python -m relay_core``: the ``net-relay`` command line."""

import sys

from relay_core.tools.cli import main

sys.exit(main())
