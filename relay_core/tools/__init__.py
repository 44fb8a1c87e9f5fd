"""The command line and what it runs: the ``net-relay`` CLI, the demo, the bench and
the zstd dictionary trainer.

The only part of the core that may import the built-in plugins: it is what a user
runs, not what a plugin or the node builds on.
"""
