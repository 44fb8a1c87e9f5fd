"""The plugin author's kit speaks clearly: what a failing check got and expected, and what
an unreliable transport must survive. Each test runs pytest on a plugin author's test file
in a subprocess, as the author would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nodes import WAIT_LIMIT
from relay_core import MessageTooLarge, hookspecs

BROKEN_CODEC_TESTS = """
    from relay_core import Codec
    from relay_core.testing import CodecConformance

    class NonsenseCodec(Codec):
        name = "nonsense"

        def encode(self, obj):
            return b"x"

        def decode(self, data):
            return "nonsense"

    class TestNonsense(CodecConformance):
        def make_codec(self):
            return NonsenseCodec()
"""

UDP_TESTS = """
    from relay_core import PluginRegistry
    from relay_core.testing import TransportConformance

    class TestUdp(TransportConformance):
        def make_transport(self, events):
            return PluginRegistry.load().create("transport", "udp", {}, args=(events,))
"""


def run_pytest(tmp_path: Path, source: str, *selection: str) -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_author.py"
    test_file.write_text(textwrap.dedent(source))
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
               "-p", "no:randomly", str(test_file), *selection]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                          timeout=WAIT_LIMIT * 6, check=False)


def test_a_failing_kit_check_says_what_it_got_and_what_it_expected(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, BROKEN_CODEC_TESTS, "-k", "tuples_arrive_as_lists")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "assert 'nonsense' == [1, ['a', b'b'], [[]]]" in result.stdout, result.stdout


def test_the_kit_sends_an_unreliable_transport_bursts_past_its_socket_buffer(
        tmp_path: Path) -> None:
    result = run_pytest(tmp_path, UDP_TESTS, "-k", "bursts_past_its_buffers")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED" in result.stdout and "1 passed" in result.stdout, result.stdout


def test_the_kit_checks_declared_options_against_the_constructor(tmp_path: Path) -> None:
    source = """
        from relay_core import Compressor, PluginOption
        from relay_core.testing import CompressorConformance

        class Shifty(Compressor):
            name = "shifty"
            options = (PluginOption("level", "integer", 3, "How hard."),
                       PluginOption("table", "path", None, "A file."))

            def __init__(self, *, level=5):
                pass

            def compress(self, data):
                return None

            def decompress(self, data, max_output_size):
                return bytes(data)

        class TestShifty(CompressorConformance):
            def make_compressor(self):
                return Shifty()
    """
    result = run_pytest(tmp_path, source, "-k", "declared_options")
    assert result.returncode == 1
    for problem in ("level: declared default 3, but the constructor's is 5",
                    "table: declared, but not a keyword of the constructor",
                    "table: declared a path, but missing from path_options"):
        assert problem in result.stdout, result.stdout


def test_a_plugin_can_check_the_plugin_api_version() -> None:
    assert isinstance(hookspecs.PLUGIN_API_VERSION, int) and hookspecs.PLUGIN_API_VERSION >= 1
    assert "PLUGIN_API_VERSION" in hookspecs.__all__


def test_message_too_large_with_only_a_message_says_how_to_call_it() -> None:
    with pytest.raises(TypeError, match=r"MessageTooLarge\(size, limit, hint=''\) takes the size"
                       r" in bytes and the limit it passed"):
        MessageTooLarge("too big")  # type: ignore[arg-type]


def test_message_too_large_keeps_its_size_limit_and_hint() -> None:
    error = MessageTooLarge(70_000, 65_507, "use tcp for large messages")
    assert (error.size, error.limit) == (70_000, 65_507)
    assert str(error) == ("message of 70000 bytes exceeds the limit of 65507 bytes;"
                          " use tcp for large messages")
