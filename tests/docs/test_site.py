"""The documentation site (mkdocs.yml, ``python3 dev.py docs``) carries every guide in docs/,
the README as its home page and the API reference, and its links work in the site as they
do on GitHub.

The build itself (``mkdocs build --strict``, which fails on a broken link or reference) runs
in CI through ``python3 dev.py docs``; these tests check what can go stale between builds.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent.parent
HOOKS = ROOT / "tools" / "mkdocs_hooks.py"
PUBLIC_MODULES = ("relay_core", "relay_core.errors", "relay_core.interfaces",
                  "relay_core.hookspecs", "relay_core.testing")


def load_module(name: str, path: Path) -> ModuleType:
    sys.path.insert(0, str(ROOT))  # dev.py imports setup.py beside it
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT))
    return module


def load_hooks() -> ModuleType:
    return load_module("mkdocs_hooks_under_test", HOOKS)


def nav_pages(nav: object) -> list[str]:
    """Every page file named anywhere in an mkdocs ``nav``."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for entry in nav for page in nav_pages(entry)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    return []


def site_config() -> dict[str, object]:
    import yaml  # the test extra brings PyYAML, so that this runs wherever the tests do

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert isinstance(config, dict)
    return config


def test_the_site_lists_every_guide_in_docs() -> None:
    pages = nav_pages(site_config()["nav"])
    guides = sorted(path.name for path in (ROOT / "docs").glob("*.md"))
    missing = [guide for guide in guides if guide not in pages]
    assert not missing, f"mkdocs.yml's nav lacks {missing}"


def test_the_site_has_an_api_reference_page_for_every_public_module() -> None:
    pages = nav_pages(site_config()["nav"])
    referenced: set[str] = set()
    for page in pages:
        text = (ROOT / "docs" / page).read_text() if (ROOT / "docs" / page).exists() else ""
        referenced.update(line.removeprefix(":::").split()[0]
                          for line in text.splitlines() if line.startswith("::: "))
    assert referenced >= set(PUBLIC_MODULES)


def test_the_readme_is_the_home_page_with_its_links_into_docs_made_site_relative() -> None:
    hooks = load_hooks()
    readme = "See [the limits](docs/limits.md#queues) and [protocol](docs/protocol.md)."
    assert hooks.site_links(readme, page_in_repo="README.md") == (
        "See [the limits](limits.md#queues) and [protocol](protocol.md).")


def test_links_to_files_outside_docs_point_at_the_repository() -> None:
    hooks = load_hooks()
    base = "https://github.com/net-relay/net-relay/blob/main/"
    assert hooks.site_links("[log](../CHANGELOG.md#performance-history)",
                            page_in_repo="docs/performance.md") == (
        f"[log]({base}CHANGELOG.md#performance-history)")
    assert hooks.site_links("[the example](../examples/net-relay-zlib)",
                            page_in_repo="docs/plugins.md") == (
        f"[the example]({base}examples/net-relay-zlib)")
    assert hooks.site_links("[guide](CONTRIBUTING.md)", page_in_repo="README.md") == (
        f"[guide]({base}CONTRIBUTING.md)")


def test_links_the_site_resolves_itself_are_left_alone() -> None:
    hooks = load_hooks()
    text = ("[a](limits.md) [b](#the-hooks) [c](https://example.org/x.md) "
            "`[not](../a/link.md)` [d](mailto:someone@example.org)")
    assert hooks.site_links(text, page_in_repo="docs/plugins.md") == text


def test_dev_docs_installs_the_docs_extra_that_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = declared["project"]["optional-dependencies"]["docs"]
    assert load_module("dev_under_test", ROOT / "dev.py").docs_requirements() == extra
