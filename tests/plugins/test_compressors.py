"""The zstd and "none" compressors: bounded output, dictionaries, clear failures."""

from __future__ import annotations

import importlib.metadata
import random
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from relay_codecs import MsgpackCodec, NoCompressor, ZstdCompressor, _zstd, train_dictionary
from relay_core import CompressionError, ConfigError, DecompressionError, DecompressionLimitExceeded

LIMIT = 1 << 20


_TOKEN_SOURCE = random.Random(99)
_TOKENS = [_TOKEN_SOURCE.randbytes(12) for _ in range(48)]


def similar_messages(count: int, seed: int) -> list[bytes]:
    """~165-byte msgpack messages drawing opaque ids from a pool shared by all traffic.

    Nothing repeats inside one message, so zstd alone cannot shrink it; a
    dictionary trained on earlier traffic knows the ids and the shape.
    """
    rng = random.Random(seed)
    codec = MsgpackCodec()
    return [
        codec.encode({"kind": "inventory.update", "shard": shard, "ids": rng.sample(_TOKENS, 9)})
        for shard in (rng.randrange(1000) for _ in range(count))
    ]


@pytest.fixture(scope="module")
def dictionary_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dict") / "messages.zdict"
    path.write_bytes(train_dictionary(similar_messages(2000, seed=1), 4096))
    return path


@pytest.fixture(scope="module")
def other_dictionary_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dict") / "other.zdict"
    path.write_bytes(train_dictionary(similar_messages(2000, seed=2), 2048))
    return path


def streamed(data: bytes) -> bytes:
    """A zstd frame that does not declare its content size, as streaming encoders write."""
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


# --- round trips ---------------------------------------------------------------------------


@settings(max_examples=200)
@given(data=st.binary(max_size=4096) | st.binary(max_size=64).map(lambda b: b * 50))
def test_zstd_output_decompresses_to_the_input(data: bytes) -> None:
    compressor = ZstdCompressor(min_size=0)
    compressed = compressor.compress(data)
    if compressed is not None:
        assert len(compressed) < len(data)
        assert compressor.decompress(compressed, len(data)) == data


def test_zstd_leaves_payloads_below_min_size_alone() -> None:
    assert ZstdCompressor(min_size=100).compress(b"a" * 99) is None
    assert ZstdCompressor(min_size=100).compress(b"a" * 100) is not None


def test_zstd_leaves_incompressible_payloads_alone() -> None:
    assert ZstdCompressor().compress(random.Random(0).randbytes(1000)) is None


def test_zstd_reads_frames_without_a_declared_size() -> None:
    assert ZstdCompressor().decompress(streamed(b"x" * 5000), 5000) == b"x" * 5000


def test_zstd_frames_record_their_size_and_dictionary_id(dictionary_path: Path) -> None:
    frame = ZstdCompressor(dictionary=str(dictionary_path)).compress(similar_messages(1, 3)[0])
    assert frame is not None
    parameters = zstandard.get_frame_parameters(frame)
    expected_id = zstandard.ZstdCompressionDict(dictionary_path.read_bytes()).dict_id()
    assert parameters.dict_id == expected_id != 0
    assert parameters.content_size == len(similar_messages(1, 3)[0])


# --- passing over what does not shrink ----------------------------------------------------


class _CountingZstd:
    """Stands in for the compressor's zstd context: counts the payloads it is given."""

    def __init__(self, context: zstandard.ZstdCompressor) -> None:
        self._context = context
        self.calls = 0

    def compress(self, data: bytes) -> bytes:
        self.calls += 1
        return self._context.compress(data)


def counting(compressor: ZstdCompressor) -> _CountingZstd:
    spy = compressor._compressor = _CountingZstd(compressor._compressor)  # type: ignore[assignment]
    return spy


RANDOM = random.Random(7)
INCOMPRESSIBLE = [RANDOM.randbytes(1000) for _ in range(200)]
COMPRESSIBLE = b"the same words again and again " * 40


def test_after_eight_misses_in_a_row_only_one_payload_in_sixteen_is_tried() -> None:
    compressor = ZstdCompressor()
    spy = counting(compressor)
    assert all(compressor.compress(payload) is None for payload in INCOMPRESSIBLE[:8])
    assert spy.calls == 8
    assert all(compressor.compress(payload) is None for payload in INCOMPRESSIBLE[8:8 + 160])
    assert spy.calls == 8 + 160 // _zstd._PROBE_EVERY


def test_a_probe_that_pays_makes_every_payload_tried_again() -> None:
    compressor = ZstdCompressor()
    spy = counting(compressor)
    for payload in INCOMPRESSIBLE[:8]:
        compressor.compress(payload)
    results = [compressor.compress(COMPRESSIBLE) for _ in range(_zstd._PROBE_EVERY + 4)]
    first = results.index(next(result for result in results if result is not None))
    assert first == _zstd._PROBE_EVERY - 1  # passed over until the probe, never longer
    assert all(result is not None for result in results[first:])
    assert spy.calls == 8 + 1 + 4
    assert compressor.decompress(results[-1], len(COMPRESSIBLE)) == COMPRESSIBLE  # type: ignore[arg-type]


def test_misses_that_are_not_in_a_row_never_stop_the_attempts() -> None:
    compressor = ZstdCompressor()
    spy = counting(compressor)
    for payload in INCOMPRESSIBLE[:100]:
        assert compressor.compress(payload) is None
        assert compressor.compress(COMPRESSIBLE) is not None
    assert spy.calls == 200


def test_skip_after_zero_tries_every_payload() -> None:
    compressor = ZstdCompressor(skip_after=0)
    spy = counting(compressor)
    for payload in INCOMPRESSIBLE:
        compressor.compress(payload)
    assert spy.calls == len(INCOMPRESSIBLE)


# --- output limits (bombs) -----------------------------------------------------------------


def test_a_frame_declaring_more_than_the_limit_is_refused_before_decompressing() -> None:
    bomb = zstandard.ZstdCompressor().compress(bytes(50_000_000))
    assert len(bomb) < 5_000
    with pytest.raises(DecompressionLimitExceeded, match="declares 50000000 bytes"):
        ZstdCompressor().decompress(bomb, LIMIT)


def test_a_streamed_frame_expanding_beyond_the_limit_is_refused() -> None:
    bomb = streamed(bytes(10_000_000))
    limit = len(bomb) * 1000 // 10  # far below the 10 MB it expands to
    with pytest.raises(DecompressionLimitExceeded):
        ZstdCompressor().decompress(bomb, limit)


def test_output_exactly_at_the_limit_is_accepted() -> None:
    compressor = ZstdCompressor()
    for frame in (compressor.compress(bytes(4096)), streamed(bytes(4096))):
        assert frame is not None
        assert compressor.decompress(frame, 4096) == bytes(4096)
        with pytest.raises(DecompressionLimitExceeded):
            compressor.decompress(frame, 4095)


# --- corrupt input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "corrupt",
    [
        b"",
        b"not zstd at all",
        zstandard.ZstdCompressor().compress(b"hello" * 100)[:-4],
        zstandard.ZstdCompressor().compress(b"hello" * 100) + b"trailing",
        streamed(b"hello" * 100)[:-3],
    ],
    ids=["empty", "garbage", "truncated", "trailing", "truncated-stream"],
)
def test_corrupt_input_raises_decompression_error(corrupt: bytes) -> None:
    with pytest.raises(DecompressionError) as caught:
        ZstdCompressor().decompress(corrupt, LIMIT)
    assert type(caught.value) is DecompressionError


@settings(max_examples=300)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decompression_errors(data: bytes) -> None:
    try:
        ZstdCompressor().decompress(b"\x28\xb5\x2f\xfd" + data, 10_000)
    except DecompressionError:
        pass


# --- dictionaries --------------------------------------------------------------------------


def test_a_trained_dictionary_shrinks_small_similar_messages(dictionary_path: Path) -> None:
    samples = similar_messages(50, seed=4)
    plain = ZstdCompressor(min_size=0)
    with_dictionary = ZstdCompressor(min_size=0, dictionary=str(dictionary_path))
    assert all(plain.compress(sample) is None for sample in samples)  # zstd alone grows them
    original = sum(map(len, samples))
    compressed = [with_dictionary.compress(sample) for sample in samples]
    assert all(frame is not None for frame in compressed)
    assert 150 < original / len(samples) < 180
    assert sum(len(frame) for frame in compressed if frame) * 3 < original
    for sample, frame in zip(samples, compressed, strict=True):
        assert frame is not None and with_dictionary.decompress(frame, LIMIT) == sample


def test_a_frame_needing_a_missing_dictionary_names_its_id(dictionary_path: Path) -> None:
    frame = ZstdCompressor(dictionary=str(dictionary_path)).compress(similar_messages(1, 5)[0])
    assert frame is not None
    dict_id = zstandard.get_frame_parameters(frame).dict_id
    with pytest.raises(DecompressionError, match=f"dictionary id {dict_id}"):
        ZstdCompressor().decompress(frame, LIMIT)


def test_extra_dictionaries_keep_old_frames_readable_after_rotation(
    dictionary_path: Path, other_dictionary_path: Path
) -> None:
    sample = similar_messages(1, 6)[0]
    old_frame = ZstdCompressor(dictionary=str(other_dictionary_path)).compress(sample)
    rotated = ZstdCompressor(
        dictionary=str(dictionary_path), dictionaries=[str(other_dictionary_path)]
    )
    assert old_frame is not None and rotated.decompress(old_frame, LIMIT) == sample
    new_frame = rotated.compress(sample)
    assert new_frame is not None and rotated.decompress(new_frame, LIMIT) == sample


def test_training_needs_enough_samples() -> None:
    with pytest.raises(CompressionError, match="could not train"):
        train_dictionary([b"a", b"b"], 4096)


def test_training_needs_a_sensible_size() -> None:
    with pytest.raises(ConfigError, match="dictionary size"):
        train_dictionary(similar_messages(100, seed=7), 0)


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"level": 23}, "level"),
        ({"level": -(2**20)}, "level"),
        ({"level": "3"}, "level"),
        ({"level": True}, "level"),
        ({"min_size": -1}, "min_size"),
        ({"skip_after": -1}, "skip_after"),
        ({"skip_after": 2.5}, "skip_after"),
        ({"dictionary": "/nonexistent/net-relay.zdict"}, "cannot read"),
        ({"dictionaries": "/one/path/as/str"}, "list of paths"),
    ],
    ids=repr,
)
def test_bad_options_raise_config_error(options: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        ZstdCompressor(**options)  # type: ignore[arg-type]


def test_a_file_that_is_not_a_dictionary_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not.zdict"
    path.write_bytes(b"just some text")
    with pytest.raises(ConfigError, match="not a zstd dictionary"):
        ZstdCompressor(dictionary=str(path))


# --- the "none" compressor -----------------------------------------------------------------


def test_none_never_compresses() -> None:
    assert NoCompressor().compress(bytes(10_000)) is None


def test_none_returns_payloads_within_the_limit_and_refuses_larger_ones() -> None:
    assert NoCompressor().decompress(b"abc", 3) == b"abc"
    with pytest.raises(DecompressionLimitExceeded):
        NoCompressor().decompress(b"abcd", 3)


def test_each_compressor_has_an_entry_point_whose_plugin_provides_it_alone() -> None:
    for cls in (ZstdCompressor, NoCompressor):
        (entry_point,) = importlib.metadata.entry_points(group="net_relay", name=cls.name)
        plugin = entry_point.load()
        assert (plugin.net_relay_compressors(), plugin.net_relay_codecs()) == ([cls], [])
    assert (ZstdCompressor.name, NoCompressor.name) == ("zstd", "none")
