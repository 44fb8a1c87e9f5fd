"""What ``net-relay plugins --options`` prints: every option plugins declare.

The rows come from each class's ``options`` (and a transport's ``peer_options``),
so the listing, the Markdown reference in docs/config.md and the checks a node
makes at start all read one declaration.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from relay_core.interfaces import PluginOption, Transport
from relay_core.plugins.registry import PluginInfo, PluginRegistry

__all__ = ["OptionRow", "default_text", "option_rows", "options_markdown", "plugin_tables", "type_text"]

_TABLES = {"codec": "codecs", "compressor": "compressors", "transport": "listen"}


@dataclass(frozen=True, slots=True)
class OptionRow:
    """One declared option of one plugin, where a config file sets it."""

    kind: str
    name: str
    table: str
    """``[compressors.zstd]``, ``[listen.udp]``, or ``[peers.NAME] (udp://)``."""
    option: PluginOption | None
    """None for a table that takes no options, or whose plugin declares nothing."""
    declared: bool = True
    """False for a plugin that declares nothing (its constructor's keywords are its options)."""


def plugin_tables(registry: PluginRegistry, info: PluginInfo
                  ) -> list[tuple[str, tuple[PluginOption, ...] | None]]:
    """The config tables that hold options of the plugin ``info``, with what each may hold
    (None: not declared, the constructor's keywords)."""
    cls = registry.plugin_class(info.kind, info.name)
    tables: list[tuple[str, tuple[PluginOption, ...] | None]] = [
        (f"[{_TABLES[info.kind]}.{info.name}]", getattr(cls, "options", None))]
    if issubclass(cls, Transport):
        tables.append((f"[peers.NAME] ({info.name}://)", cls.peer_options))
    return tables


def option_rows(registry: PluginRegistry, plugins: Sequence[PluginInfo]) -> Iterator[OptionRow]:
    """The rows of ``plugins``, in their order, each plugin's options in declared order."""
    for info in plugins:
        for table, declared in plugin_tables(registry, info):
            if not declared:
                yield OptionRow(info.kind, info.name, table, None, declared is not None)
            else:
                yield from (OptionRow(info.kind, info.name, table, option) for option in declared)


def default_text(option: PluginOption) -> str:
    """The default as TOML would write it; ``-`` for none (or one the doc describes)."""
    value = option.default
    if option.required:
        return "required"
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(f'"{item}"' if isinstance(item, str) else str(item)
                               for item in value) + "]"
    return str(value)


def type_text(option: PluginOption) -> str:
    if option.choices:
        return " or ".join(f'"{choice}"' for choice in option.choices)
    return option.type


def options_markdown(registry: PluginRegistry, plugins: Sequence[PluginInfo]) -> str:
    """A Markdown section per config table: ``| key | type | default | meaning |``."""
    sections = []
    for info in plugins:
        for table, declared in plugin_tables(registry, info):
            lines = [f"### `{table}`", "", "| key | type | default | meaning |",
                     "|---|---|---|---|"]
            if declared is None:
                lines.append("| (any keyword of the constructor) | | | not declared |")
            elif not declared:
                lines.append("| (none) | | | takes no options |")
            lines += [f"| `{option.name}` | {type_text(option)} | `{default_text(option)}` "
                      f"| {option.doc.replace('|', chr(92) + '|')} |" for option in declared or ()]
            sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"
