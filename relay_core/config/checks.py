"""The checks a configuration value passes, and the table helpers they share.

Each check takes ``(where, key, value)`` and raises a :class:`~relay_core.ConfigError`
saying where the value was, what it is and what is allowed; relay_core.config.node_config
runs them over its tables. Option values are frozen here: tables become read-only
mappings and arrays tuples, so a config is immutable all the way down.
"""

from __future__ import annotations

import datetime
import difflib
import json
import re
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType

from ..errors import ConfigError, InvalidAddress
from .address import host_problem, parse_address

__all__ = [
    "NAME_PATTERN",
    "NAME_RULE",
    "PLUGIN_PATTERN",
    "PLUGIN_RULE",
    "Check",
    "Options",
    "as_table",
    "boolean",
    "check_option_names",
    "check_values",
    "did_you_mean",
    "fail",
    "frozen_options",
    "frozen_plugin_options",
    "frozen_value",
    "host_name",
    "integer_in",
    "kind_of",
    "optional_port",
    "peer_address",
    "peer_name_problem",
    "refuse_unknown",
    "reject",
    "seconds_in",
    "shown",
    "split_options",
    "text_matching",
    "thawed",
    "toml_key",
]

Options = Mapping[str, object]

Check = Callable[[str, str, object], None]
"""Raise ConfigError if ``value`` may not be set for ``key``; ``where`` prefixes the message."""

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,255}")
NAME_RULE = "a name of 1..255 ASCII letters, digits, '_', '.' or '-'"
PLUGIN_PATTERN = re.compile(r"[a-z0-9._-]{1,32}")
PLUGIN_RULE = "a plugin name of 1..32 characters from [a-z0-9._-]"
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_SCALARS = (str, int, float, bool, datetime.date, datetime.time)
_TYPO_CUTOFF = 0.75
"""How close an unknown key must be to a known one to be taken for a typo of it."""
_MAX_DEPTH = 100
"""Deepest nesting of arrays and tables in an option value (a cycle would recurse forever)."""


def fail(where: str, text: str, kind: type[ConfigError] = ConfigError) -> ConfigError:
    return kind(f"{where} {text}")


def reject(where: str, key: str, value: object, allowed: str) -> ConfigError:
    return fail(where, f"{key} = {shown(value)}: {allowed}")


def integer_in(low: int, high: int | None = None) -> Check:
    allowed = f"must be an integer in {low}..{high}" if high else f"must be an integer >= {low}"

    def check(where: str, key: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise reject(where, key, value, f"{allowed}, not {kind_of(value)}")
        if value < low or (high is not None and value > high):
            raise reject(where, key, value, allowed)

    return check


def seconds_in(low: float, high: float) -> Check:
    allowed = f"must be a number of seconds, more than {low:g} and at most {high:.3f}"

    def check(where: str, key: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise reject(where, key, value, f"{allowed}, not {kind_of(value)}")
        if not low < value <= high:  # NaN fails this too
            raise reject(where, key, value, allowed)

    return check


def optional_port(where: str, key: str, value: object) -> None:
    if value is not None:
        integer_in(0, 65535)(where, key, value)


def boolean(where: str, key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise reject(where, key, value, f"must be true or false, not {kind_of(value)}")


def text_matching(pattern: re.Pattern[str], rule: str, *, optional: bool = False) -> Check:
    def check(where: str, key: str, value: object) -> None:
        if optional and value is None:
            return
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise reject(where, key, value, f"must be {rule}")

    return check


def host_name(where: str, key: str, value: object) -> None:
    if not isinstance(value, str):
        raise reject(where, key, value, f"must be a string, not {kind_of(value)}")
    problem = host_problem(value)
    if problem:
        raise reject(
            where,
            key,
            value,
            f"{problem}; expected a numeric IPv4 or IPv6 address "
            "(no brackets) or a host name such as localhost",
        )


def peer_address(where: str, key: str, value: object) -> None:
    if not isinstance(value, str):
        raise reject(where, key, value, f"must be a node URL string, not {kind_of(value)}")
    try:
        address = parse_address(value, forbid_actor=True)
    except InvalidAddress as exc:
        raise fail(where, f"{key}: {exc}", InvalidAddress) from None
    if address.port == 0:
        raise fail(
            where,
            f"{key} = {shown(value)}: a peer needs its real port, 1..65535 "
            "(port 0 only means 'any free port' when listening)",
            InvalidAddress,
        )


def peer_name_problem(name: str) -> str | None:
    return None if NAME_PATTERN.fullmatch(name) else f"a peer name must be {NAME_RULE}"


def as_table(where: str, name: str, value: object) -> Mapping[str, object]:
    """``value`` as a mapping with string keys, or a ConfigError saying it is not one."""
    if not isinstance(value, Mapping):
        raise fail(where, f"{name} must be a table, not {kind_of(value)} {shown(value)}".lstrip())
    for key in value:
        if not isinstance(key, str):
            raise fail(where, f"{name} has the key {shown(key)}; keys must be strings".lstrip())
    return value


def refuse_unknown(
    where: str,
    what: str,
    table: Mapping[str, object],
    allowed: Collection[str],
    shown: Callable[[str], str],
) -> None:
    for key in table:
        if key not in allowed:
            names = ", ".join(shown(name) for name in allowed)
            raise fail(
                where,
                f"unknown {what} {shown(key)}; allowed {what}s: {names}"
                f"{did_you_mean(key, allowed, shown)}",
            )


def split_options(
    where: str, table: Mapping[str, object], known_keys: Collection[str]
) -> tuple[dict[str, object], dict[str, object]]:
    """Cut a table into the keys this module knows and the plugin's options."""
    known = {key: value for key, value in table.items() if key in known_keys}
    options = {key: value for key, value in table.items() if key not in known_keys}
    check_option_names(where, options, known_keys)
    return known, options


def check_option_names(where: str, options: Mapping[str, object], known: Collection[str]) -> None:
    """Refuse option names that are, or look like a typo of, the table's own keys."""
    for key in options:
        if key in known:
            raise fail(where, f"options may not contain {key!r}: it is a field of its own")
        near = difflib.get_close_matches(key, known, n=1, cutoff=_TYPO_CUTOFF)
        if near:
            raise fail(where, f"unknown key {key!r}; did you mean {near[0]!r}?")


def check_values(where: str, checks: Mapping[str, Check], values: object) -> None:
    """Run each key's check on the mapping's value or the object's attribute of that name."""
    for key, check in checks.items():
        if isinstance(values, Mapping):
            if key in values:
                check(where, key, values[key])
        else:
            check(where, key, getattr(values, key))


def frozen_plugin_options(where: str, name: str, value: object) -> Mapping[str, Options]:
    tables = as_table(where, name, value)
    result = {}
    for plugin, options in tables.items():
        text_matching(PLUGIN_PATTERN, PLUGIN_RULE)(where, f"{name} key", plugin)
        result[plugin] = frozen_options(
            f"{where} {name}[{plugin!r}]", as_table(where, f"{name}[{plugin!r}]", options)
        )
    return MappingProxyType(result)


def frozen_options(where: str, options: object, fields: Collection[str] = ()) -> Options:
    table = as_table(where, "options", options)
    check_option_names(where, table, fields)
    return MappingProxyType({key: frozen_value(where, key, value) for key, value in table.items()})


def frozen_value(where: str, key: str, value: object, depth: int = 0) -> object:
    """A read-only copy of a TOML value: tables become mappingproxies, arrays tuples."""
    if isinstance(value, _TOML_SCALARS):
        return value
    if depth >= _MAX_DEPTH:
        raise fail(where, f"{key} is nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, list | tuple):
        return tuple(frozen_value(where, key, item, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return MappingProxyType(
            {
                inner: frozen_value(where, f"{key}.{inner}", item, depth + 1)
                for inner, item in as_table(where, key, value).items()
            }
        )
    raise reject(
        where,
        key,
        value,
        "must be a TOML value (string, integer, float, boolean, "
        f"date/time, array or table), not {kind_of(value)}",
    )


def thawed(value: object) -> object:
    """A mutable copy of a frozen TOML value: mappings become dicts, tuples lists."""
    if isinstance(value, Mapping):
        return {key: thawed(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thawed(item) for item in value]
    return value


def did_you_mean(key: str, candidates: Collection[str], shown: Callable[[str], str]) -> str:
    near = difflib.get_close_matches(key, list(candidates), n=1)
    return f"; did you mean {shown(near[0])}?" if near else ""


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def shown(value: object) -> str:
    """The value as TOML would spell it (strings as literal strings), cut short."""
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def kind_of(value: object) -> str:
    kinds = [
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (Mapping, "a table"),
        (list | tuple, "an array"),
        (datetime.date, "a date"),
    ]
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)
