#!/usr/bin/env bash
# Check what tools/build_wheels.sh made, as a user would meet it: for each interpreter in
# PYTHONS (space-separated; default PYTHON, default python3), its compiled manylinux wheel and
# the pure wheel, each installed into a fresh virtual environment of that interpreter, run
# `net-relay demo` (small counts) outside the source tree; then part of the test suite runs
# from the unpacked sdist against the sdist installed (pure Python), on the first interpreter
# only. Run by .ci/run on 3.11 with every newer supported interpreter the machine has.
# `--no-build` checks what dist/ already holds. Needs PyPI, as build_wheels.sh does, for the
# dependencies of each fresh environment (offline: PIP_NO_INDEX=1 PIP_FIND_LINKS=a wheelhouse).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
read -r -a pythons <<<"${PYTHONS:-${PYTHON:-python3}}"
python=${pythons[0]}
work=$root/build/release-check
say() { printf '%s [%4ds] %s\n' "check_release:" "$SECONDS" "$*"; }

if [[ ${1:-} == --no-build ]]; then
    say "checking dist/ as it is"
else
    PYTHONS="${pythons[*]}" bash tools/build_wheels.sh
fi
version=$("$python" -c 'import runpy; print(runpy.run_path("relay_core/_version.py")["__version__"])')
rm -rf "$work"
mkdir -p "$work/elsewhere"

check_wheel() {  # check_wheel PYTHON NAME WHEEL EXPECTED-BUILD
    local python=$1 name=$2 wheel=$3 build=$4 venv=$work/$2
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
for interpreter in "${pythons[@]}"; do
    read -r py_version tag < <("$interpreter" -c 'import sys
print("%d.%d cp%d%d" % (sys.version_info[:2] * 2))')
    compiled=(dist/net_relay-*-"$tag"-"$tag"-*manylinux*.whl)
    [[ -f ${compiled[0]} ]] || {
        echo "check_release: dist/ has no compiled wheel for Python $py_version ($tag)" >&2; exit 1; }
    say "Python $py_version ($interpreter)"
    check_wheel "$interpreter" "compiled-$py_version" "${compiled[0]}" "compiled with mypyc"
    check_wheel "$interpreter" "pure-$py_version" "$(ls dist/net_relay-*-py3-none-any.whl)" \
        "pure Python"
done

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
