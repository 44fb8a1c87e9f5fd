"""The zstd compressor (RFC 8878), with optional trained dictionaries.

Every frame is a standard zstd frame that records its content size and, when a
dictionary was used, that dictionary's id. The receiver finds the dictionary by
that id, so the wire format needs no field of its own, and dictionaries can be
rotated: compress with the new one while still accepting frames made with the
old ones (``dictionaries``).

Compressing what does not shrink only costs time, so after ``skip_after``
payloads in a row that zstd could not shrink, the compressor stops trying
except for every ``_PROBE_EVERY``-th payload, and tries each one again as soon
as a probe pays. Traffic that turns compressible goes uncompressed for at most
``_PROBE_EVERY - 1`` payloads; each one is still delivered whole.

Invariant: :meth:`ZstdCompressor.decompress` never produces more than
``max_output_size`` bytes. A frame that declares a larger content size is refused
before any work; a frame that does not declare it is decompressed into a buffer
of at most ``max_output_size`` bytes.

An instance keeps zstd contexts between calls, so it must not be used by two
threads at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import zstandard

from relay_core.errors import (
    CompressionError,
    ConfigError,
    DecompressionError,
    DecompressionLimitExceeded,
)
from relay_core.interfaces import Compressor, PluginOption

__all__ = ["ZstdCompressor", "train_dictionary"]

MIN_LEVEL = -(1 << 17)
"""zstd's fastest level (ZSTD_minCLevel); negative levels trade ratio for speed."""
MAX_LEVEL = zstandard.MAX_COMPRESSION_LEVEL
_DICTIONARY_MAGIC = bytes.fromhex("37a430ec")
_PROBE_EVERY = 16
"""While skipping, one payload in this many is compressed to see if it pays again."""


class ZstdCompressor(Compressor):
    """Zstandard (https://facebook.github.io/zstd/)."""

    name = "zstd"
    path_options = frozenset({"dictionary", "dictionaries"})
    options = (
        PluginOption("level", "integer", 3,
                     f"Compression level, {MIN_LEVEL}..{MAX_LEVEL}: higher packs more, slower; "
                     "negative is fastest."),
        PluginOption("min_size", "integer", 64,
                     "Payloads shorter than this (bytes) travel uncompressed."),
        PluginOption("skip_after", "integer", 8,
                     "After this many payloads in a row that did not shrink, try only one in "
                     "16; 0: always try."),
        PluginOption("dictionary", "path", None,
                     "A dictionary (`net-relay train-dict`) to compress with; peers need it too."),
        PluginOption("dictionaries", "paths", (),
                     "More dictionaries this node can decompress with (during a rotation)."),
    )

    def __init__(
        self,
        *,
        level: int = 3,
        min_size: int = 64,
        skip_after: int = 8,
        dictionary: str | None = None,
        dictionaries: Sequence[str] = (),
    ) -> None:
        _check_int("level", level, MIN_LEVEL, MAX_LEVEL)
        _check_int("min_size", min_size, 0, None)
        _check_int("skip_after", skip_after, 0, None)
        self._min_size = min_size
        self._skip_after = skip_after
        self._misses = 0
        """Payloads in a row that compressing did not shrink."""
        self._skipped = 0
        """Payloads passed over since the last attempt, while skipping."""
        own = _load_dictionary("dictionary", dictionary) if dictionary is not None else None
        extra = [_load_dictionary("dictionaries", path) for path in _paths(dictionaries)]
        self._compressor = zstandard.ZstdCompressor(
            level=level, dict_data=own, write_content_size=True, write_dict_id=True
        )
        self._decompressors = {0: zstandard.ZstdDecompressor()}
        for loaded in [*extra, own]:
            if loaded is not None:
                self._decompressors[loaded.dict_id()] = zstandard.ZstdDecompressor(loaded)

    def compress(self, data: bytes) -> bytes | None:
        if len(data) < self._min_size:
            return None
        if self._skip_after and self._misses >= self._skip_after:
            self._skipped += 1
            if self._skipped < _PROBE_EVERY:
                return None
            self._skipped = 0
        compressed = self._compressor.compress(data)
        if len(compressed) < len(data):
            self._misses = 0
            return compressed
        self._misses += 1
        return None

    def decompress(self, data: bytes, max_output_size: int) -> bytes:
        frame = _frame_parameters(data)
        decompressor = self._decompressors.get(frame.dict_id)
        if decompressor is None:
            known = ", ".join(str(dict_id) for dict_id in sorted(self._decompressors) if dict_id)
            raise DecompressionError(
                f"zstd frame needs dictionary id {frame.dict_id}, which this node does not have"
                f" (it has: {known or 'no dictionaries'}); add it to 'dictionaries'"
            )
        if frame.content_size == zstandard.CONTENTSIZE_UNKNOWN:
            return _decompress_unsized(decompressor, data, max_output_size)
        if frame.content_size > max_output_size:
            raise _too_large(f"zstd frame declares {frame.content_size} bytes", max_output_size)
        try:
            return decompressor.decompress(data, allow_extra_data=False)
        except zstandard.ZstdError as exc:
            raise DecompressionError(f"corrupt zstd frame: {exc}") from exc


def _decompress_unsized(
    decompressor: zstandard.ZstdDecompressor, data: bytes, max_output_size: int
) -> bytes:
    # python-zstandard treats a limit of 0 as "none", so ask for one byte more
    # than allowed and check the length ourselves.
    try:
        output = decompressor.decompress(
            data, max_output_size=max_output_size + 1, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        if _expands_beyond(decompressor, data, max_output_size):
            raise _too_large("zstd frame expands", max_output_size) from exc
        raise DecompressionError(f"corrupt zstd frame: {exc}") from exc
    if len(output) > max_output_size:
        raise _too_large("zstd frame expands", max_output_size)
    return output


def _expands_beyond(decompressor: zstandard.ZstdDecompressor, data: bytes, limit: int) -> bool:
    """Tell a frame that outgrew the buffer from a corrupt one, reading at most limit + 1 bytes."""
    try:
        with decompressor.stream_reader(data) as reader:
            return len(reader.read(limit + 1)) > limit
    except zstandard.ZstdError:
        return False


def _too_large(what: str, limit: int) -> DecompressionLimitExceeded:
    return DecompressionLimitExceeded(f"{what} beyond the limit of {limit} bytes")


def _frame_parameters(data: bytes) -> zstandard.FrameParameters:
    try:
        return zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as exc:
        raise DecompressionError(f"not a zstd frame: {exc}") from exc


# Option errors name the option and its value; the node puts the config file and
# the table ([compressors.zstd]) in front.


def _check_int(option: str, value: object, low: int, high: int | None) -> None:
    if type(value) is not int or value < low or (high is not None and value > high):
        allowed = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise ConfigError(f"{option} = {value!r} is not allowed: {allowed}")


def _paths(dictionaries: Sequence[str]) -> Sequence[str]:
    if isinstance(dictionaries, str):
        raise ConfigError(
            f"dictionaries = {dictionaries!r} is not allowed: a list of paths, not one string"
        )
    return dictionaries


def _load_dictionary(option: str, path: str) -> zstandard.ZstdCompressionDict:
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{option} = {path!r} is not allowed: a path to a zstd dictionary file")
    try:
        with open(path, "rb") as file:
            content = file.read()
    except OSError as exc:
        raise ConfigError(
            f"{option} = {path!r}: cannot read it ({exc.strerror or exc})") from None
    if not content.startswith(_DICTIONARY_MAGIC):
        raise ConfigError(
            f"{option} = {path!r} is not a zstd dictionary (it lacks the dictionary magic"
            " number); make one with net_relay's train_dictionary or 'zstd --train'"
        )
    loaded = zstandard.ZstdCompressionDict(content, dict_type=zstandard.DICT_TYPE_FULLDICT)
    if loaded.dict_id() == 0:
        # A frame made with it could not say which dictionary it needs.
        raise ConfigError(f"{option} = {path!r} has dictionary id 0; train one with an id")
    return loaded


def train_dictionary(samples: Sequence[bytes], size: int) -> bytes:
    """Train a zstd dictionary of at most ``size`` bytes from sample payloads.

    Samples should look like real traffic: encoded messages of the kinds a node
    sends. zstd needs plenty of them (hundreds or more, several times ``size`` bytes
    in total).
    """
    if type(size) is not int or size < 256:
        raise ConfigError(f"dictionary size {size!r} is not allowed: use an int >= 256")
    try:
        trained = zstandard.train_dictionary(size, [bytes(sample) for sample in samples])
    except zstandard.ZstdError as exc:
        total = sum(len(sample) for sample in samples)
        raise CompressionError(
            f"zstd could not train a {size}-byte dictionary from {len(samples)} samples"
            f" ({total} bytes): {exc}; give more or more varied samples"
        ) from exc
    return trained.as_bytes()
