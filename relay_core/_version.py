"""The version of net-relay: the one place it is written.

pyproject.toml reads it (``[tool.setuptools.dynamic]``) for the distribution's
metadata; ``relay_core.__version__`` and ``net-relay --version`` show it.
"""

__version__ = "0.2.0"
