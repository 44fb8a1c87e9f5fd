"""mkdocs hooks for the documentation site (mkdocs.yml names this file under ``hooks``).

The Markdown files are written for GitHub first: the README links the guides as
``docs/x.md``, and the guides link files outside docs/ (``../CHANGELOG.md``,
``../examples/...``). The site is built from docs/ with the README as its home page, so
these hooks add the README as ``index.md`` and rewrite, as each page is rendered, the links
the site cannot resolve: a README link into docs/ becomes a link to that page, and a link to
a file outside docs/ becomes a link to the file in the GitHub repository. The files
themselves stay as they are, so both readings work.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY_FILES = "https://github.com/net-relay/net-relay/blob/main/"
HOME_PAGE = "index.md"

# Fenced blocks and inline code are matched first and kept as they are; only the third
# alternative, a Markdown link's target, is rewritten.
_CODE_OR_LINK = re.compile(
    r"(?P<fence>^(?P<marks>```|~~~)[^\n]*\n.*?^(?P=marks)[ \t]*$)"
    r"|(?P<code>`[^`\n]+`)"
    r"|(?P<link>\]\((?P<target>[^)\s]+)\))",
    re.MULTILINE | re.DOTALL,
)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def site_links(markdown: str, page_in_repo: str) -> str:
    """``markdown`` of the repository file ``page_in_repo`` (a path such as ``README.md``
    or ``docs/limits.md``) with each link target rewritten for the site built from docs/."""

    def rewrite(match: re.Match[str]) -> str:
        target = match.group("target")
        if target is None or _SCHEME.match(target) or target.startswith(("#", "/")):
            return match.group(0)
        path, hash_mark, anchor = target.partition("#")
        in_repo = posixpath.normpath(posixpath.join(posixpath.dirname(page_in_repo), path))
        if in_repo.startswith("docs/"):
            if page_in_repo.startswith("docs/"):
                return match.group(0)  # the site resolves it as GitHub does
            site_target = posixpath.relpath(in_repo, "docs")
        else:
            site_target = REPOSITORY_FILES + in_repo
        return f"]({site_target}{hash_mark}{anchor})"

    return _CODE_OR_LINK.sub(rewrite, markdown)


def on_files(files: Any, config: Any) -> Any:
    """Add the README as the site's home page."""
    # Imported here: only mkdocs runs the hooks, and the tests load this file without it.
    from mkdocs.structure.files import File

    files.append(File.generated(config, HOME_PAGE, abs_src_path=str(ROOT / "README.md")))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    page_in_repo = "README.md" if page.file.src_uri == HOME_PAGE else f"docs/{page.file.src_uri}"
    return site_links(markdown, page_in_repo)
