"""The Rust test peer for Heph interop (heph_peer/), built once per session from Debian's crates.

Tests marked ``rust_peer`` are skipped, with the reason, where cargo or the
Debian packages of serde, serde_derive and serde_json are missing; where both
are present a failed build fails those tests, with cargo's output. The build is
offline: a ``.cargo/config.toml`` in the build directory (never in the source
tree) points crates.io at the directory of Debian's packaged crates.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rust_peer import RustPeer

SOURCES = Path(__file__).parent / "heph_peer"
DEBIAN_REGISTRY = Path("/usr/share/cargo/registry")
DEBIAN_PACKAGES = "cargo librust-serde-json-dev librust-serde-derive-dev"
CRATES = ("serde", "serde_derive", "serde_json")
BUILD_LIMIT = 900.0
"""Seconds for the first build (serde_derive and syn) on a busy machine."""

CARGO_CONFIG = f"""\
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "{DEBIAN_REGISTRY}"

[net]
offline = true
"""


def why_no_rust_peer() -> str | None:
    """Why the peer cannot be built here, or None."""
    install = f"(as root: apt-get install {DEBIAN_PACKAGES}; .ci/run does it)"
    if shutil.which("cargo") is None:
        return f"Heph interop needs cargo to build its serde_json test peer {install}"
    missing = [crate for crate in CRATES
               if not any(DEBIAN_REGISTRY.glob(f"{crate}-[0-9]*/Cargo.toml"))]
    if missing:
        return (f"Heph interop needs Debian's Rust crates {', '.join(missing)} in "
                f"{DEBIAN_REGISTRY} {install}")
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("rust_peer") is not None:
        reason = why_no_rust_peer()
        if reason is not None:
            pytest.skip(reason)


def _build_dir(config: pytest.Config, factory: pytest.TempPathFactory) -> Path:
    """A directory that outlives the session where pytest's cache is on (cargo then rebuilds
    nothing), else a temporary one."""
    cache = getattr(config, "cache", None)
    return Path(cache.mkdir("heph_peer")) if cache is not None else factory.mktemp("heph_peer")


def _copy_if_changed(source: Path, target: Path) -> None:
    """Copy ``source`` unless ``target`` holds the same bytes, so cargo sees nothing new."""
    data = source.read_bytes()
    if target.exists() and target.read_bytes() == data:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


@pytest.fixture(scope="session")
def rust_peer_binary(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built peer. The marker's check has run: cargo and the crates are here."""
    build = _build_dir(request.config, tmp_path_factory)
    for source in (SOURCES / "Cargo.toml", SOURCES / "src" / "main.rs"):
        _copy_if_changed(source, build / source.relative_to(SOURCES))
    config = build / ".cargo" / "config.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(CARGO_CONFIG)
    built = subprocess.run(["cargo", "build", "--offline", "--quiet"], cwd=build,
                           capture_output=True, text=True, timeout=BUILD_LIMIT, check=False)
    if built.returncode != 0:
        pytest.fail(f"cargo could not build the Heph test peer in {build} from Debian's "
                    f"crates:\n{built.stderr[-4000:]}", pytrace=False)
    return build / "target" / "debug" / "heph_peer"


@pytest.fixture
def start_peer(rust_peer_binary: Path) -> Iterator[Callable[..., RustPeer]]:
    """``start_peer(*arguments)`` runs a peer; every peer started is stopped afterwards."""
    started: list[RustPeer] = []

    def start(*arguments: str) -> RustPeer:
        peer = RustPeer(rust_peer_binary, *arguments)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.close()
