"""``net-relay train-dict``: a zstd dictionary from sample messages, and what it saves.

Small messages barely compress on their own (zstd's frame overhead eats the
gain), but messages of one program share most of their shape. A dictionary
trained on samples of them lets zstd compress each message against what they
have in common. Both ends name the dictionary file in ``[compressors.zstd]``;
every frame says which dictionary it used (zstd writes the dictionary id into
its own frame header), so a receiver without it fails clearly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from relay_core.errors import ConfigError
from relay_core.plugins.registry import PluginRegistry

__all__ = ["DictionaryReport", "train_from_samples"]


@dataclass(frozen=True, slots=True)
class DictionaryReport:
    samples: int
    dictionary_bytes: int
    dictionary_id: int
    mean_plain: float
    """Mean encoded size of a sample, uncompressed."""
    mean_zstd: float
    """Mean size with plain zstd (what travels: the smaller of compressed and plain)."""
    mean_dictionary: float
    """Mean size with zstd and the trained dictionary."""


def _read_samples(path: Path) -> list[object]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the samples: {exc.strerror or exc}") from None
    samples = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                samples.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{number}: not a JSON message ({exc.msg}); the "
                                  "samples file holds one JSON message per line") from None
    if len(samples) < 10:
        raise ConfigError(f"{path}: {len(samples)} samples; give at least 10, ideally hundreds")
    return samples


def _mean_size(compress: object, payloads: list[bytes]) -> float:
    sizes = [len(compress(p) or p) for p in payloads]  # type: ignore[operator]
    return sum(sizes) / len(sizes)


def train_from_samples(samples_path: Path, output: Path, *, codec: str = "msgpack",
                       size: int = 16 * 1024) -> DictionaryReport:
    """Encode each sample with ``codec``, train a dictionary, write it, and measure it."""
    from relay_codecs._zstd import ZstdCompressor, train_dictionary  # the zstd plugin's tool

    encoder = PluginRegistry.load().codec(codec)
    payloads = [encoder.encode(sample) for sample in _read_samples(samples_path)]
    dictionary = train_dictionary(payloads, size)
    output.write_bytes(dictionary)
    # skip_after=0: every sample is measured, none passed over as not paying.
    plain = ZstdCompressor(min_size=0, skip_after=0)
    trained = ZstdCompressor(min_size=0, skip_after=0, dictionary=str(output))
    return DictionaryReport(
        samples=len(payloads), dictionary_bytes=len(dictionary),
        dictionary_id=int.from_bytes(dictionary[4:8], "little"),
        mean_plain=sum(map(len, payloads)) / len(payloads),
        mean_zstd=_mean_size(plain.compress, payloads),
        mean_dictionary=_mean_size(trained.compress, payloads),
    )
