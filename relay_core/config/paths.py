"""Relative file paths in plugin options, made relative to the config file that named them.

A path in ``node.toml`` means what nginx, systemd and docker-compose users
expect: relative to the file, not to wherever the process was started. The
rules this module keeps:

- only options a plugin declares in ``path_options`` are touched, and of
  those only strings (or strings inside an array) that are relative paths;
- absolute paths, empty strings and values of other types pass unchanged, so
  the plugin still reports a bad value as it would have;
- without a directory (a config built in code) nothing changes: the working
  directory applies, as it does for any path handed to Python.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

__all__ = ["resolve_paths"]


def resolve_paths(
    options: Mapping[str, object], path_options: Collection[str], directory: str | None
) -> dict[str, object]:
    """A copy of ``options`` with each relative path under a key in ``path_options``
    joined to ``directory`` (None: a plain copy)."""
    if directory is None:
        return dict(options)
    return {
        key: _resolved(value, directory) if key in path_options else value
        for key, value in options.items()
    }


def _resolved(value: object, directory: str) -> object:
    if isinstance(value, list | tuple):
        return tuple(_joined(item, directory) for item in value)
    return _joined(value, directory)


def _joined(value: object, directory: str) -> object:
    if not isinstance(value, str) or not value or os.path.isabs(value):
        return value
    return os.path.join(directory, value)
