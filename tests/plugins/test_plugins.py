"""The plugin registry: finding, validating, listing and creating plugin classes.

Plugins come from three places here: classes defined in this file and
registered in code, fake distributions written into ``tmp_path`` and found
through their entry points, and the example package ``net-relay-zlib`` when it
is installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import re
import subprocess
import sys
import textwrap
import types
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nodes import WAIT_LIMIT
from relay_core import (
    Codec,
    Compressor,
    ConfigError,
    DecompressionError,
    DecompressionLimitExceeded,
    HostPort,
    Node,
    NodeConfig,
    PeerConfig,
    PluginConflict,
    PluginError,
    Transport,
    UnknownPlugin,
    hookimpl,
)
from relay_core.plugins.registry import PluginInfo, PluginRegistry

# --- plugin classes defined in code -------------------------------------------------


class FakeCodec(Codec):
    name: ClassVar[str] = "fake-codec"

    def __init__(self, *, indent: int = 0) -> None:
        self.indent = indent

    def encode(self, obj: object) -> bytes:
        return repr(obj).encode()

    def decode(self, data: bytes) -> object:
        return data.decode()


class OtherCodec(FakeCodec):
    name: ClassVar[str] = "other-codec"


class RequiresKeyCodec(FakeCodec):
    name: ClassVar[str] = "keyed"

    def __init__(self, *, key: str) -> None:
        super().__init__()
        self.key = key


class AnyOptionCodec(FakeCodec):
    name: ClassVar[str] = "any-option"

    def __init__(self, **options: object) -> None:
        super().__init__()
        self.options = options


class FailingCodec(FakeCodec):
    name: ClassVar[str] = "failing"

    def __init__(self, *, size: int = 0) -> None:
        raise OverflowError("size too big for the C library")


class StrictCodec(FakeCodec):
    name: ClassVar[str] = "strict"

    def __init__(self, *, size: int = 0) -> None:
        raise ConfigError("strict codec option size must be positive")


class AbstractCodec(Codec):
    name: ClassVar[str] = "abstract"


class FakeCompressor(Compressor):
    name: ClassVar[str] = "fake-compressor"

    def compress(self, data: bytes) -> bytes | None:
        return None

    def decompress(self, data: bytes, max_output_size: int) -> bytes:
        return data


class SameNameCompressor(FakeCompressor):
    name: ClassVar[str] = "fake-codec"


class FakeTransport(Transport):
    scheme: ClassVar[str] = "fake"
    reliable: ClassVar[bool] = True

    def __init__(self, events: Any, *, mtu: int = 1200) -> None:
        super().__init__(events)
        self.mtu = mtu

    async def listen(self, host: str, port: int) -> HostPort:
        return host, port

    async def prepare(self, host: str, port: int) -> HostPort:
        return host, port

    def send(self, destination: HostPort, packet: bytes) -> None:
        pass

    async def close(self) -> None:
        pass


class UnreliableTransport(FakeTransport):
    scheme: ClassVar[str] = "vague"
    reliable = None  # type: ignore[assignment]


class StringPathsCodec(FakeCodec):
    name: ClassVar[str] = "stringly"
    path_options = "dictionary"  # type: ignore[assignment]  # a str would match substrings


def make_plugin(name: str = "fake_plugin", /, **results: object) -> types.ModuleType:
    """A plugin module whose hooks return ``results``: codecs=, compressors=, transports=."""
    module = types.ModuleType(name)
    for kind, result in results.items():
        setattr(module, f"net_relay_{kind}", hookimpl(returning(result)))
    return module


def returning(result: object) -> Callable[[], object]:
    def hook() -> object:
        return result

    return hook


class ClassPlugin:
    """A plugin may also be a class whose static methods are the hooks."""

    @staticmethod
    @hookimpl
    def net_relay_codecs() -> list[type[Codec]]:
        return [FakeCodec]


def registry_of(*plugins: object) -> PluginRegistry:
    return PluginRegistry.load(entry_points=False, plugins=plugins)


# --- finding and listing ------------------------------------------------------------


def test_a_registered_codec_is_created_by_name() -> None:
    registry = registry_of(make_plugin(codecs=[FakeCodec]))
    assert type(registry.codec("fake-codec")) is FakeCodec


def test_a_transport_class_is_found_by_scheme() -> None:
    registry = registry_of(make_plugin(transports=[FakeTransport]))
    assert registry.transport_class("fake") is FakeTransport


def test_names_of_each_kind_are_listed_sorted() -> None:
    plugin = make_plugin(
        codecs=[OtherCodec, FakeCodec], compressors=[FakeCompressor], transports=[FakeTransport]
    )
    registry = registry_of(plugin)
    assert registry.codec_names() == ["fake-codec", "other-codec"]
    assert registry.compressor_names() == ["fake-compressor"]
    assert registry.transport_schemes() == ["fake"]


def test_plugins_lists_every_class_sorted_by_kind_then_name_with_its_origin() -> None:
    plugin = make_plugin(codecs=[OtherCodec, FakeCodec], transports=[FakeTransport])
    registry = registry_of(make_plugin("zip_plugin", compressors=[FakeCompressor]))
    registry.register(plugin, name="mine")
    assert registry.plugins() == [
        PluginInfo("codec", "fake-codec", "<fake_plugin>", "", "mine"),
        PluginInfo("codec", "other-codec", "<fake_plugin>", "", "mine"),
        PluginInfo("compressor", "fake-compressor", "<zip_plugin>", "", "zip_plugin"),
        PluginInfo("transport", "fake", "<fake_plugin>", "", "mine"),
    ]


def test_a_plugin_defined_as_a_class_is_listed_under_its_module() -> None:
    registry = registry_of(ClassPlugin)
    assert registry.plugins() == [
        PluginInfo("codec", "fake-codec", f"<{__name__}>", "", "ClassPlugin")
    ]


def test_one_name_may_be_used_by_a_codec_and_a_compressor() -> None:
    registry = registry_of(make_plugin(codecs=[FakeCodec], compressors=[SameNameCompressor]))
    assert registry.codec_names() == registry.compressor_names() == ["fake-codec"]


def test_asking_for_an_unknown_name_lists_the_installed_names_of_that_kind() -> None:
    registry = registry_of(make_plugin(codecs=[FakeCodec, OtherCodec]))
    with pytest.raises(UnknownPlugin, match="no codec named 'cbor'.*fake-codec, other-codec"):
        registry.codec("cbor")
    with pytest.raises(UnknownPlugin, match="no compressor named 'zstd'.*none"):
        registry.compressor("zstd")
    with pytest.raises(UnknownPlugin, match="no transport named 'quic'"):
        registry.transport_class("quic")


def test_unknown_plugin_is_also_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        registry_of().codec("cbor")


# --- options ------------------------------------------------------------------------


def test_options_are_passed_to_the_constructor_as_keywords() -> None:
    codec = registry_of(make_plugin(codecs=[FakeCodec])).codec("fake-codec", indent=2)
    assert isinstance(codec, FakeCodec) and codec.indent == 2


def test_an_option_the_class_does_not_take_is_refused_naming_the_accepted_ones() -> None:
    registry = registry_of(make_plugin(codecs=[FakeCodec]))
    expected = (
        r"^\[codecs.fake-codec\] colour: unknown option; allowed: indent \(codec 'fake-codec'"
    )
    with pytest.raises(ConfigError, match=expected):
        registry.codec("fake-codec", colour="red")


def test_every_unknown_option_is_named_at_once() -> None:
    registry = registry_of(make_plugin(compressors=[FakeCompressor]))
    with pytest.raises(ConfigError, match=r"\] a, b: unknown options; allowed: none"):
        registry.compressor("fake-compressor", b=1, a=2)


def test_a_missing_required_option_is_refused() -> None:
    registry = registry_of(make_plugin(codecs=[RequiresKeyCodec]))
    with pytest.raises(ConfigError, match=r"^\[codecs.keyed\] key: required by codec 'keyed'"):
        registry.codec("keyed")
    assert isinstance(registry.codec("keyed", key="k"), RequiresKeyCodec)


def test_a_class_taking_any_keyword_accepts_every_option() -> None:
    codec = registry_of(make_plugin(codecs=[AnyOptionCodec])).codec("any-option", x=1, y=2)
    assert isinstance(codec, AnyOptionCodec) and codec.options == {"x": 1, "y": 2}


def test_transport_options_are_checked_without_the_events_argument() -> None:
    registry = registry_of(make_plugin(transports=[FakeTransport]))
    registry.check_options(FakeTransport, {"mtu": 1400}, "listen.fake")
    with pytest.raises(ConfigError, match=r"\[listen.fake\] events: unknown option; allowed: mtu"):
        registry.check_options(FakeTransport, {"events": None}, "listen.fake")


def test_options_of_a_class_outside_the_registry_can_be_checked() -> None:
    with pytest.raises(ConfigError, match=r"\[peers.b\] ttl: .*test_plugins.FakeTransport"):
        registry_of().check_options(FakeTransport, {"ttl": 3}, "peers.b")


def test_an_error_from_the_constructor_becomes_a_plugin_error() -> None:
    registry = registry_of(make_plugin(codecs=[FailingCodec]))
    with pytest.raises(PluginError, match="codec 'failing'.*OverflowError: size too big"):
        registry.codec("failing", size=3)


def test_a_config_error_from_the_constructor_is_given_the_table_in_front() -> None:
    registry = registry_of(make_plugin(codecs=[StrictCodec]))
    with pytest.raises(ConfigError,
                       match=r"^\[codecs.strict\] strict codec option size must be positive$"):
        registry.codec("strict", size=-1)


# --- validation of what hooks return ------------------------------------------------

INVALID_RESULTS = [
    pytest.param(
        {"codecs": FakeCodec}, "returned <class .*not a list of Codec subclasses", id="bare"
    ),
    pytest.param({"codecs": None}, "returned None, not a list", id="none"),
    pytest.param({"codecs": [FakeCompressor]}, "not one of the Codec subclasses", id="wrong-kind"),
    pytest.param({"codecs": [FakeCodec()]}, r"returned an instance of FakeCodec; return the "
                 r"class itself \(\[FakeCodec\]\)", id="instance"),
    pytest.param(
        {"codecs": [AbstractCodec]}, "abstract; it must implement decode, encode", id="abc"
    ),
    pytest.param({"transports": [UnreliableTransport]}, "reliable must be True or False", id="rel"),
    pytest.param({"codecs": [StringPathsCodec]}, "path_options is 'dictionary'; it must be a "
                 "frozenset of option names", id="paths"),
]


@pytest.mark.parametrize(("results", "message"), INVALID_RESULTS)
def test_a_hook_returning_something_invalid_is_refused(
    results: dict[str, object], message: str
) -> None:
    with pytest.raises(PluginError, match=f"plugin 'fake_plugin'.*{message}"):
        registry_of(make_plugin(**results))


NAME_RULE = re.compile(r"[a-z0-9._-]{1,32}")


@given(st.text(alphabet=st.sampled_from("az09._-A \u00e9/"), max_size=40))
def test_a_name_is_accepted_exactly_when_it_fits_a_frame_field(name: str) -> None:
    codec = type("NamedCodec", (FakeCodec,), {"name": name})
    if NAME_RULE.fullmatch(name):
        assert registry_of(make_plugin(codecs=[codec])).codec_names() == [name]
    else:
        with pytest.raises(PluginError, match="must be a str of 1 to 32 characters"):
            registry_of(make_plugin(codecs=[codec]))


def test_a_class_without_a_name_is_refused() -> None:
    nameless = type("Nameless", (FakeTransport,), {"scheme": None})
    with pytest.raises(PluginError, match="Nameless.scheme is None"):
        registry_of(make_plugin(transports=[nameless]))


def test_a_misspelt_hook_is_refused_with_the_hook_it_likely_meant() -> None:
    plugin = types.ModuleType("typo")
    plugin.net_relay_codec = hookimpl(lambda: [FakeCodec])  # type: ignore[attr-defined]
    with pytest.raises(PluginError) as refused:
        registry_of(plugin)
    assert str(refused.value) == (
        "plugin 'typo' (<typo>) implements an unknown hook 'net_relay_codec'; did you mean"
        " 'net_relay_codecs'? (net-relay's hooks: net_relay_codecs, net_relay_compressors,"
        " net_relay_transports)")


def test_a_hook_wrapper_is_refused() -> None:
    def wrap() -> Iterator[None]:
        yield

    plugin = types.ModuleType("wrapping")
    plugin.net_relay_codecs = hookimpl(wrapper=True)(wrap)  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="plugin 'wrapping'.*cannot be a hook wrapper"):
        registry_of(plugin)


def test_a_hook_that_raises_becomes_a_plugin_error() -> None:
    plugin = types.ModuleType("boom")
    plugin.net_relay_codecs = hookimpl(lambda: 1 / 0)  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="plugin 'boom'.*raised ZeroDivisionError"):
        registry_of(plugin)


def test_a_refused_plugin_leaves_nothing_behind() -> None:
    registry = registry_of()
    bad = make_plugin(codecs=[FakeCodec, AbstractCodec])
    with pytest.raises(PluginError):
        registry.register(bad)
    assert registry.plugins() == []
    registry.register(make_plugin(codecs=[FakeCodec]))  # the name and the plugin name are free
    assert registry.codec_names() == ["fake-codec"]


# --- conflicts ----------------------------------------------------------------------


def test_two_plugins_claiming_one_codec_name_conflict_naming_both() -> None:
    registry = registry_of(make_plugin("first", codecs=[FakeCodec]))
    twin = type("TwinCodec", (FakeCodec,), {})
    with pytest.raises(PluginConflict, match="codec 'fake-codec'.*'first'.*'second'"):
        registry.register(make_plugin("second", codecs=[twin]))
    assert registry.codec("fake-codec").__class__ is FakeCodec


def test_a_plugin_returning_one_class_twice_registers_it_once() -> None:
    registry = registry_of(make_plugin(codecs=[FakeCodec, FakeCodec]))
    assert registry.codec_names() == ["fake-codec"]


def test_a_plugin_returning_two_classes_with_one_name_conflicts() -> None:
    twin = type("TwinCodec", (FakeCodec,), {})
    with pytest.raises(PluginConflict, match="provides two different codec classes named"):
        registry_of(make_plugin(codecs=[FakeCodec, twin]))


def test_registering_one_plugin_object_twice_is_a_conflict() -> None:
    plugin = make_plugin(codecs=[FakeCodec])
    registry = registry_of(plugin)
    with pytest.raises(PluginConflict, match="already registered as plugin 'fake_plugin'"):
        registry.register(plugin, name="again")


def test_registering_two_plugins_under_one_name_is_a_conflict() -> None:
    registry = registry_of()
    registry.register(make_plugin(codecs=[FakeCodec]), name="same")
    with pytest.raises(PluginConflict, match="the name 'same' is taken"):
        registry.register(make_plugin(codecs=[OtherCodec]), name="same")


def test_two_plugin_modules_with_one_module_name_are_a_conflict() -> None:
    registry = registry_of(make_plugin("same", codecs=[FakeCodec]))
    with pytest.raises(PluginConflict, match="the name 'same' is taken by plugin 'same'"):
        registry.register(make_plugin("same", codecs=[OtherCodec]))
    registry.register(make_plugin("same", codecs=[OtherCodec]), name="same-2")
    assert registry.codec_names() == ["fake-codec", "other-codec"]


def test_registering_none_is_refused() -> None:
    with pytest.raises(PluginError, match="cannot register None"):
        registry_of().register(None)


# --- independence -------------------------------------------------------------------


def test_registering_into_one_registry_does_not_affect_another() -> None:
    first, second = registry_of(), registry_of()
    first.register(make_plugin(codecs=[FakeCodec]))
    assert first.codec_names() == ["fake-codec"]
    assert second.codec_names() == []


def test_one_plugin_object_can_serve_two_registries() -> None:
    plugin = make_plugin(codecs=[FakeCodec])
    assert registry_of(plugin).codec_names() == registry_of(plugin).codec_names() == ["fake-codec"]


# --- installed distributions (entry points) -----------------------------------------

CODEC_MODULE = """
from relay_core import Codec, hookimpl

class {cls}(Codec):
    name = {name!r}

    def encode(self, obj):
        return b""

    def decode(self, data):
        return None

@hookimpl
def net_relay_codecs():
    return [{cls}]
"""


class Site:
    """A directory on sys.path into which fake distributions are installed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def install(self, dist: str, version: str, entry_points: dict[str, str]) -> None:
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        metadata = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        (info / "METADATA").write_text(metadata)
        lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
        (info / "entry_points.txt").write_text(f"[net_relay]\n{lines}")

    def module(self, name: str, source: str) -> None:
        (self.root / f"{name}.py").write_text(textwrap.dedent(source))
        self.modules.append(name)

    def codec_module(self, name: str, codec_name: str) -> None:
        self.module(name, CODEC_MODULE.format(cls="InstalledCodec", name=codec_name))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    fake = Site(tmp_path)
    monkeypatch.syspath_prepend(tmp_path)
    yield fake
    # Neither the modules nor importlib.metadata's path caches may outlive the test.
    for name in fake.modules:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()


def load_installed() -> PluginRegistry:
    importlib.invalidate_caches()  # the files were written after sys.path changed
    return PluginRegistry.load()


def test_an_installed_plugin_is_listed_with_its_distribution_and_version(site: Site) -> None:
    site.install("fake-json5", "2.3", {"json5": "fake_json5_plugin"})
    site.codec_module("fake_json5_plugin", "json5")
    row = PluginInfo("codec", "json5", "fake-json5", "2.3", "json5")
    assert row in load_installed().plugins()


def test_entry_points_are_not_read_when_told_not_to(site: Site) -> None:
    site.install("fake-json5", "2.3", {"json5": "fake_json5_plugin"})
    site.codec_module("fake_json5_plugin", "json5")
    importlib.invalidate_caches()
    assert PluginRegistry.load(entry_points=False).plugins() == []


def test_a_plugin_that_fails_to_import_is_skipped_with_a_warning(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    site.install("fake-broken", "0.9", {"brokencodec": "fake_broken_plugin"})
    site.module("fake_broken_plugin", "import no_such_dependency_xyz\n")
    site.install("fake-fine", "1.0", {"fine": "fake_fine_plugin"})
    site.codec_module("fake_fine_plugin", "fine")
    caplog.set_level(logging.WARNING, logger="relay_core.plugins")
    registry = load_installed()
    assert registry.codec_names().count("fine") == 1
    failure = next(f for f in registry.failures if f.plugin == "brokencodec")
    assert (failure.distribution, failure.version) == ("fake-broken", "0.9")
    assert failure.error == "ModuleNotFoundError: No module named 'no_such_dependency_xyz'"
    warned = [r.getMessage() for r in caplog.records if "brokencodec" in r.getMessage()]
    assert len(warned) == 1 and "fake-broken 0.9" in warned[0]
    assert "no_such_dependency_xyz" in warned[0]


def test_a_plugin_that_raises_while_importing_is_skipped(site: Site) -> None:
    site.install("fake-raising", "1.0", {"raising": "fake_raising_plugin"})
    site.module("fake_raising_plugin", "raise RuntimeError('needs a licence key')\n")
    failures = load_installed().failures
    assert any(f.error == "RuntimeError: needs a licence key" for f in failures)


def test_asking_for_a_plugin_that_failed_to_load_says_why(site: Site) -> None:
    site.install("fake-broken", "0.9", {"brokencodec": "fake_broken_plugin"})
    site.module("fake_broken_plugin", "import no_such_dependency_xyz\n")
    expected = (
        "codec 'brokencodec' is unavailable: plugin 'brokencodec' from fake-broken 0.9"
        " failed to load .ModuleNotFoundError: No module named 'no_such_dependency_xyz'."
    )
    with pytest.raises(UnknownPlugin, match=expected):
        load_installed().codec("brokencodec")


def test_a_name_two_distributions_claim_conflicts_when_asked_for_naming_both(
        site: Site) -> None:
    site.install("fake-a", "1.0", {"a": "fake_a_plugin"})
    site.codec_module("fake_a_plugin", "shared-codec")
    site.install("fake-b", "2.0", {"b": "fake_b_plugin"})
    site.codec_module("fake_b_plugin", "shared-codec")
    registry = load_installed()  # loading itself does not fail
    assert "shared-codec" not in registry.codec_names()
    with pytest.raises(PluginConflict, match="'shared-codec' is unavailable") as raised:
        registry.codec("shared-codec")
    assert "fake-a 1.0" in str(raised.value) and "fake-b 2.0" in str(raised.value)
    unavailable = {(f.kind, f.listed_as, f.distribution) for f in registry.failures}
    assert {("codec", "shared-codec", "fake-a"), ("codec", "shared-codec", "fake-b")} <= unavailable


BROKEN_MODULES = {
    "import-error": "import no_such_dependency_xyz\n",
    "hook-typo": """
        from relay_core import hookimpl
        @hookimpl
        def net_relay_codec():
            return []
        """,
    "instance": CODEC_MODULE.format(cls="InstanceCodec", name="instcodec").replace(
        "return [InstanceCodec]", "return [InstanceCodec()]"),
}
BROKEN_REASONS = {
    "import-error": "ModuleNotFoundError: No module named 'no_such_dependency_xyz'",
    "hook-typo": "unknown hook 'net_relay_codec'; did you mean 'net_relay_codecs'?",
    "instance": "returned an instance of InstanceCodec; return the class itself",
}


def install_broken_plugins(site: Site) -> None:
    """One distribution per way of being broken, plus two claiming one codec name."""
    for key, source in BROKEN_MODULES.items():
        module = f"fake_{key.replace('-', '_')}_plugin"
        site.install(f"fake-{key}", "0.1", {key: module})
        site.module(module, source)
    site.install("fake-twin-a", "1.0", {"twin-a": "fake_twin_a"})
    site.codec_module("fake_twin_a", "twin")
    site.install("fake-twin-b", "1.0", {"twin-b": "fake_twin_b"})
    site.codec_module("fake_twin_b", "twin")


def test_broken_installed_plugins_cost_only_themselves(site: Site) -> None:
    install_broken_plugins(site)
    registry = load_installed()
    reasons = {f.listed_as: f.error for f in registry.failures}
    for key, reason in BROKEN_REASONS.items():
        assert reason in reasons[key], reasons[key]
    assert reasons["twin"].startswith("PluginConflict: codec 'twin' is claimed by")
    assert {"msgpack", "json"} <= set(registry.codec_names())
    assert "udp" in registry.transport_schemes()


def test_a_config_naming_a_broken_plugin_says_why_it_is_unavailable(site: Site) -> None:
    install_broken_plugins(site)
    config = NodeConfig(peers={"beta": PeerConfig("udp://127.0.0.1:9", codec="hook-typo")})
    with pytest.raises(UnknownPlugin) as refused:
        Node(config, registry=load_installed())
    assert str(refused.value).startswith(
        "peers.beta.codec: codec 'hook-typo' is unavailable: plugin 'hook-typo' from"
        " fake-hook-typo 0.1 failed to load (PluginError: "), refused.value
    assert "did you mean 'net_relay_codecs'?" in str(refused.value)


def test_a_config_naming_a_conflicted_name_is_told_who_claims_it(site: Site) -> None:
    install_broken_plugins(site)
    with pytest.raises(PluginConflict, match=r"^node\.codec: codec 'twin' is unavailable: "
                       r"codec 'twin' is claimed by plugin 'twin-a' \(fake-twin-a 1\.0\) and by"
                       r" plugin 'twin-b' \(fake-twin-b 1\.0\)"):
        Node(NodeConfig(codec="twin"), registry=load_installed())


async def test_a_udp_msgpack_node_starts_and_serves_beside_broken_plugins(site: Site) -> None:
    install_broken_plugins(site)

    async def echo(ctx: Any) -> None:
        async for message in ctx:
            message.respond(message.request)

    registry = load_installed()
    async with Node(NodeConfig(name="alpha"), registry=registry) as alpha, \
            Node(NodeConfig(name="beta"), registry=registry) as beta:
        alpha.spawn(echo, name="echo")
        ref = beta.ref(f"{alpha.address('udp')}/echo")
        assert await ref.rpc({"n": 1}, timeout=WAIT_LIMIT) == {"n": 1}


def test_the_plugins_command_lists_broken_plugins_and_does_not_abort(site: Site) -> None:
    install_broken_plugins(site)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site.root), *sys.path])}
    result = subprocess.run([sys.executable, "-m", "relay_core.tools.cli", "plugins"],
                            capture_output=True, text=True, env=environment,
                            timeout=WAIT_LIMIT, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for key, reason in BROKEN_REASONS.items():
        row = next(line for line in lines if f" {key} " in line)
        assert f"fake-{key}" in row and "unavailable: " in row and reason in row, row
    twins = [line for line in lines if line.startswith("codec") and " twin " in line]
    assert len(twins) == 2 and all("unavailable: PluginConflict" in row for row in twins)
    assert any(line.split()[:2] == ["transport", "udp"] and line.endswith("ok") for line in lines)


def test_a_plugin_of_another_kind_is_named_as_such() -> None:
    config = NodeConfig(compressor_options={"json": {}})
    with pytest.raises(ConfigError, match=r"compressors\.json: no compressor 'json' is installed"
                       r" .*; 'json' is a codec, not a compressor"):
        Node(config)


def test_two_distributions_with_one_entry_point_name_are_both_loaded(site: Site) -> None:
    site.install("fake-a", "1.0", {"extra": "fake_a_plugin"})
    site.codec_module("fake_a_plugin", "codec-a")
    site.install("fake-b", "2.0", {"extra": "fake_b_plugin"})
    site.codec_module("fake_b_plugin", "codec-b")
    rows = load_installed().plugins()
    assert PluginInfo("codec", "codec-a", "fake-a", "1.0", "extra") in rows
    assert PluginInfo("codec", "codec-b", "fake-b", "2.0", "extra") in rows


# --- the example package net-relay-zlib ---------------------------------------------


@pytest.fixture(scope="module")
def zlib_registry() -> PluginRegistry:
    try:
        importlib.metadata.distribution("net-relay-zlib")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("net-relay-zlib is not installed: pip install -e examples/net-relay-zlib")
    return PluginRegistry.load()


@pytest.fixture(scope="module")
def zlib_compressor(zlib_registry: PluginRegistry) -> Compressor:
    return zlib_registry.compressor("zlib", min_size=0)


def test_the_zlib_example_is_listed_with_its_distribution_and_version(
    zlib_registry: PluginRegistry,
) -> None:
    version = importlib.metadata.version("net-relay-zlib")
    row = PluginInfo("compressor", "zlib", "net-relay-zlib", version, "zlib")
    assert row in zlib_registry.plugins()


@given(st.binary(max_size=4096) | st.binary(max_size=8).map(lambda chunk: chunk * 500))
def test_zlib_round_trips_whatever_it_compresses(zlib_compressor: Compressor, data: bytes) -> None:
    packed = zlib_compressor.compress(data)
    assert packed is None or zlib_compressor.decompress(packed, len(data)) == data


def test_zlib_leaves_payloads_below_min_size_uncompressed(zlib_registry: PluginRegistry) -> None:
    compressor = zlib_registry.compressor("zlib", min_size=100)
    assert compressor.compress(b"a" * 99) is None
    assert compressor.compress(b"a" * 100) is not None


def test_zlib_does_not_send_a_compressed_form_that_is_no_smaller(
    zlib_compressor: Compressor,
) -> None:
    assert zlib_compressor.compress(bytes(range(256))) is None


def test_zlib_decompression_stops_at_the_limit(zlib_compressor: Compressor) -> None:
    bomb = zlib.compress(bytes(50_000_000), 9)  # about 50 KB that would expand to 50 MB
    with pytest.raises(DecompressionLimitExceeded, match="limit of 65536 bytes"):
        zlib_compressor.decompress(bomb, 65_536)


def test_zlib_output_of_exactly_the_limit_is_allowed(zlib_compressor: Compressor) -> None:
    data = bytes(1000)
    assert zlib_compressor.decompress(zlib.compress(data), 1000) == data
    with pytest.raises(DecompressionLimitExceeded):
        zlib_compressor.decompress(zlib.compress(data), 999)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"not zlib at all", id="garbage"),
        pytest.param(zlib.compress(b"x" * 200)[:-3], id="truncated"),
        pytest.param(zlib.compress(b"x" * 200) + b"tail", id="trailing-bytes"),
        pytest.param(b"", id="empty"),
    ],
)
def test_zlib_rejects_corrupt_input(zlib_compressor: Compressor, data: bytes) -> None:
    with pytest.raises(DecompressionError):
        zlib_compressor.decompress(data, 10_000)


@given(st.binary(max_size=512))
def test_zlib_turns_any_bad_input_into_a_decompression_error(
    zlib_compressor: Compressor, data: bytes
) -> None:
    try:
        zlib_compressor.decompress(data, 10_000)
    except DecompressionError:
        pass


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"level": 10}, "level = 10 is invalid; it must be an integer from 0 to 9"),
        ({"level": True}, "level = True is invalid"),
        ({"min_size": -1}, r"min_size = -1 is invalid; it must be an integer >= 0"),
        ({"window": 15}, "window: unknown option; allowed: level, min_size"),
    ],
)
def test_zlib_refuses_bad_options(
    zlib_registry: PluginRegistry, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        zlib_registry.compressor("zlib", **options)
