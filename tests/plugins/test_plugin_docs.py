"""docs/plugins.md shows each plugin interface as the code defines it: every signature in
its contract blocks is compared with relay_core.interfaces, so the page cannot drift."""

from __future__ import annotations
import __future__

import abc
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from relay_core import MessageTooLarge, hookspecs, interfaces

PAGE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
INTERFACES = [interfaces.Codec, interfaces.Compressor, interfaces.Transport,
              interfaces.TransportEvents]


def documented_classes() -> dict[str, Any]:
    """Every class defined in the python blocks of the page's "The contracts" section."""
    section = PAGE.read_text().split("## The contracts", 1)[1].split("\n## ", 1)[0]
    namespace: dict[str, Any] = {"abc": abc, "Protocol": object}
    flags = __future__.annotations.compiler_flag  # annotations stay text, as in the code
    for block in re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL):
        exec(compile(block, str(PAGE), "exec", flags=flags, dont_inherit=True),  # noqa: S102
             namespace)  # the page is ours: running its blocks is how they are compared
    return namespace


def public_members(cls: type) -> dict[str, Any]:
    return {name: value for name, value in vars(cls).items()
            if callable(value) or isinstance(value, classmethod)
            if not name.startswith("_") or name == "__init__" and cls is interfaces.Transport}


@pytest.mark.parametrize("real", INTERFACES, ids=lambda cls: cls.__name__)
def test_the_page_shows_every_method_with_its_real_signature(real: type) -> None:
    shown = documented_classes().get(real.__name__)
    assert shown is not None, f"docs/plugins.md shows no class {real.__name__}"
    for name in public_members(real):
        assert name in vars(shown), f"docs/plugins.md omits {real.__name__}.{name}"
        assert str(inspect.signature(getattr(shown, name))) == \
            str(inspect.signature(getattr(real, name))), f"{real.__name__}.{name}"
    invented = sorted(set(public_members(shown)) - set(public_members(real)))
    assert invented == [], f"docs/plugins.md shows methods {real.__name__} does not have"


@pytest.mark.parametrize("real", INTERFACES[:3], ids=lambda cls: cls.__name__)
def test_the_page_shows_every_class_attribute_with_its_real_type(real: type) -> None:
    shown = documented_classes()[real.__name__]
    assert shown.__annotations__ == real.__annotations__


def test_the_page_shows_how_message_too_large_is_raised() -> None:
    text = PAGE.read_text()
    assert "MessageTooLarge(len(packet),\n  self.max_packet_size" in text
    assert list(inspect.signature(MessageTooLarge).parameters) == ["size", "limit", "hint"]


def test_the_page_names_every_hook_and_the_plugin_api_version() -> None:
    text = PAGE.read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("net_relay_")]
    assert all(f"`{hook}()`" in text for hook in hooks)
    assert "PLUGIN_API_VERSION" in text
