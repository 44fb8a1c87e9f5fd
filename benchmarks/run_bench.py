"""net-relay side by side with raw asyncio sockets and pyzmq: the same code as ``net-relay bench``.

Run ``python benchmarks/run_bench.py [OPTIONS]`` (``--help`` lists them);
benchmarks/README.md says what each row means and how to read the ratios.
"""

from __future__ import annotations

import sys

from relay_core.tools.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
