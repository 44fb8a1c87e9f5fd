#!/usr/bin/env bash
# Check what tools/build_wheels.sh made, as a user would meet it: each wheel installed into a
# fresh virtual environment runs `net-relay demo` (small counts) outside the source tree, and
# part of the test suite runs from the unpacked sdist against the sdist installed (pure Python).
# Run by .ci/run once, on Python 3.11. `--no-build` checks what dist/ already holds. Needs PyPI, as build_wheels.sh does, for the
# dependencies of each fresh environment (offline: PIP_NO_INDEX=1 PIP_FIND_LINKS=a wheelhouse).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
work=$root/build/release-check
say() { printf '%s [%4ds] %s\n' "check_release:" "$SECONDS" "$*"; }

if [[ ${1:-} == --no-build ]]; then
    say "checking dist/ as it is"
else
    bash tools/build_wheels.sh
fi
version=$("$python" -c 'import runpy; print(runpy.run_path("relay_core/_version.py")["__version__"])')
rm -rf "$work"
mkdir -p "$work/elsewhere"

check_wheel() {  # check_wheel NAME WHEEL EXPECTED-BUILD
    local name=$1 wheel=$2 build=$3 venv=$work/$1
    say "$name wheel: $(basename "$wheel")"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"
    # From a folder without the sources: what runs is what the wheel installed.
    (
        cd "$work/elsewhere"
        line=$(env -u NET_RELAY_PURE_PYTHON "$venv/bin/net-relay" --version)
        echo "  $line"
        [[ $line == "net-relay $version, $build"* ]] || {
            echo "check_release: expected 'net-relay $version, $build'" >&2; exit 1; }
        "$venv/bin/python" -c 'import net_relay, relay_core
assert net_relay.Node is relay_core.Node and net_relay.__version__ == relay_core.__version__'
        env -u NET_RELAY_PURE_PYTHON "$venv/bin/net-relay" demo --messages 50 --rpcs 10
    )
}
check_wheel compiled "$(ls dist/net_relay-*manylinux*.whl)" "compiled with mypyc"
check_wheel pure "$(ls dist/net_relay-*-py3-none-any.whl)" "pure Python"

say "tests from the unpacked sdist"
tar -xzf dist/net_relay-"$version".tar.gz -C "$work"
tree=$work/net_relay-$version
"$python" -m venv "$work/sdist-env"
NET_RELAY_PURE_PYTHON=1 "$work/sdist-env/bin/python" -m pip install --quiet \
    --disable-pip-version-check "$tree[test]" "$tree/examples/net-relay-zlib"
# A few minutes' worth: the public API, the layers, the wire format's test vectors, plugins,
# a node, the command line in processes, and the example plugin's own tests (with its
# conftest imports, the ones a short sdist used to lack). The pytest script, not
# `python -m pytest`: the installed package is tested, not the tree.
(
    cd "$tree"
    "$work/sdist-env/bin/pytest" -q -p no:randomly tests/test_public_api.py tests/test_layers.py \
        tests/protocol/test_protocol_vectors.py tests/plugins/test_plugins.py \
        tests/runtime/test_node_udp.py tests/tools/test_run.py tests/tools/test_dev_script.py \
        tests/system/test_two_processes.py examples/net-relay-zlib/tests
)
say "release check passed"
