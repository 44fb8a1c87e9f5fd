"""The fenced code blocks of the project's Markdown, for the tests that run and check them.

A block is meant to run unless the line before its fence (blank lines aside)
is ``<!-- fragment: WHY -->``: a fragment is a piece of a program (an actor
function, a call inside a running node), checked for syntax only, and WHY
says what it needs that it does not have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(`{3,})(\S*)")
_FRAGMENT = re.compile(r"^<!-- fragment: (?P<why>\S.*\S) -->$")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    """1-based line of the opening fence."""
    language: str
    text: str
    fragment: str | None
    """Why the block is a fragment; None for a block meant to run."""

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def code_blocks(document: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = document.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        opening = _FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        fence, language = opening.groups()
        end = next(at for at in range(number + 1, len(lines)) if lines[at].startswith(fence))
        blocks.append(Block(document, number + 1, language, "\n".join(lines[number + 1:end]) + "\n",
                            _fragment_reason(lines, number)))
        number = end + 1
    return blocks


def _fragment_reason(lines: list[str], fence: int) -> str | None:
    before = next((line for line in reversed(lines[:fence]) if line.strip()), "")
    marked = _FRAGMENT.match(before.strip())
    return marked["why"] if marked else None


def blocks_in(*languages: str, documents: list[Path] = DOCUMENTS) -> list[Block]:
    return [block for document in documents for block in code_blocks(document)
            if block.language in languages]
