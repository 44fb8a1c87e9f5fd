"""The README and docs/ show code that works: every block meant to run is run, every
config is accepted by a node, every fragment says what it lacks and still parses."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from markdown_blocks import ROOT, Block, blocks_in

from relay_core import Node, NodeConfig

RUN_LIMIT_SECONDS = 120.0
PLUGIN_GUIDE = ROOT / "docs" / "plugins.md"
"""Its Python blocks sketch a plugin's classes piece by piece; examples/net-relay-zlib is
the whole plugin they come from, with its own tests."""
RUNNABLE_DOCUMENTS = [block_document for block_document in
                      sorted({block.document for block in blocks_in("python")})
                      if block_document != PLUGIN_GUIDE]

PYTHON = [block for block in blocks_in("python", documents=RUNNABLE_DOCUMENTS)
          if block.fragment is None]
FRAGMENTS = [block for block in blocks_in("python", "toml") if block.fragment is not None]
CONFIGS = [block for block in blocks_in("toml") if block.fragment is None]


def named(blocks: list[Block]) -> dict[str, object]:
    return {"argvalues": blocks, "ids": [block.name for block in blocks]}


def run_python_file(path: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(path), *args], cwd=cwd, env=dict(os.environ),
                          capture_output=True, text=True, timeout=RUN_LIMIT_SECONDS, check=False)


@pytest.mark.parametrize("block", **named(PYTHON))  # type: ignore[arg-type]
def test_every_python_block_meant_to_run_runs_as_written(block: Block, tmp_path: Path) -> None:
    program = tmp_path / "example.py"
    program.write_text(block.text, encoding="utf-8")
    done = run_python_file(program, tmp_path)
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout}\n{done.stderr}"


def test_the_readme_tour_prints_what_the_readme_says_it_prints(tmp_path: Path) -> None:
    tour = next(block for block in PYTHON if block.document.name == "README.md")
    program = tmp_path / "tour.py"
    program.write_text(tour.text, encoding="utf-8")
    done = run_python_file(program, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["got Greeting(name='ada', lang='en')", "hello, ada"]


@pytest.mark.parametrize("block", **named(FRAGMENTS))  # type: ignore[arg-type]
def test_a_fragment_says_what_it_lacks_and_still_parses(block: Block) -> None:
    assert block.fragment and len(block.fragment.split()) >= 3, "say why it cannot run alone"
    if block.language == "toml":
        tomllib.loads(block.text)
    else:
        ast.parse(block.text)


@pytest.mark.parametrize("block", **named(CONFIGS))  # type: ignore[arg-type]
async def test_every_node_config_shown_is_accepted_by_a_node(block: Block) -> None:
    data = tomllib.loads(block.text)
    if "project" in data or "build-system" in data:
        return  # a package's pyproject.toml, not a node's config: parsing it is the check
    # Made, not started: making a node checks every key, plugin and option (nothing listens).
    Node(NodeConfig.from_toml(block.text, source=block.name))


def test_there_are_blocks_to_check() -> None:
    assert len(PYTHON) >= 5 and len(CONFIGS) >= 4
