"""The compressor conformance suite: what every compressor plugin must do, as pytest tests.

A plugin author subclasses :class:`CompressorConformance` in a ``Test*`` class
and returns a compressor from ``make_compressor``; pytest collects the inherited
tests.

``compress`` may decline (return None) for any input; the node then sends the
payload uncompressed and never asks this compressor to decompress it. So the
round-trip checks run on what ``compress`` returned. The limit checks need
something to decompress: the compressed form of a payload that compresses well
or, from a pass-through compressor (one whose ``decompress`` returns its input,
like ``none``), the raw payload; with neither, they are skipped.
"""

from __future__ import annotations

import random
import tracemalloc
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..errors import DecompressionError, DecompressionLimitExceeded
from ..interfaces import Compressor
from ._registration import declaration_problems, registered_names

__all__ = ["CompressorConformance"]

_RELAXED = settings(deadline=None,
                    suppress_health_check=[HealthCheck.differing_executors, HealthCheck.too_slow])
_MIB = 1024 * 1024
# Payloads that compress well, of any length: runs and repeats of short random pieces.
_COMPRESSIBLE = st.builds(lambda piece, count: piece * count,
                          st.binary(min_size=1, max_size=16), st.integers(1, 4096))
_PAYLOADS = st.binary(max_size=4096) | _COMPRESSIBLE


def _incompressible(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def _decompressible(compressor: Compressor, data: bytes) -> bytes | None:
    """The compressed form of ``data``, or ``data`` itself from a pass-through compressor,
    or None when ``compress`` declined and ``decompress`` is no pass-through."""
    packed = compressor.compress(data)
    if packed is not None:
        return packed
    return data if _passes_through(compressor) else None


def _passes_through(compressor: Compressor) -> bool:
    """True for a compressor whose ``decompress`` returns its input unchanged (like ``none``)."""
    probe = b"pass-through probe"
    try:
        return compressor.decompress(probe, len(probe)) == probe
    except DecompressionError:
        return False


class CompressorConformance:
    """Subclass in a ``Test*`` class and implement :meth:`make_compressor`; pytest runs the rest."""

    bomb_size: ClassVar[int] = 32 * _MIB
    """Bytes of zeros the suite compresses into a bomb; a small limit must stop it."""
    bomb_limit: ClassVar[int] = 64 * 1024
    """The ``max_output_size`` the bomb is decompressed with."""
    bomb_memory: ClassVar[int] = 8 * _MIB
    """The most memory (as tracemalloc sees it) decompressing the bomb may take at its peak."""

    def make_compressor(self) -> Compressor:
        """Return the compressor under test."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_compressor()")

    def _sent_form(self, compressor: Compressor, data: bytes) -> bytes:
        """What ``decompress`` would be given for ``data`` (see :func:`_decompressible`);
        skip the test if there is nothing."""
        payload = _decompressible(compressor, data)
        if payload is not None:
            return payload
        pytest.skip(f"compress() declined {len(data)} bytes that compress well, and decompress()"
                    " is not a pass-through: there is nothing to decompress")

    # -- names ---------------------------------------------------------------

    def test_the_name_is_accepted_by_the_registry(self) -> None:
        cls = type(self.make_compressor())
        assert registered_names(cls) == [cls.name]

    def test_declared_options_match_the_constructor(self) -> None:
        problems = declaration_problems(type(self.make_compressor()))
        assert not problems, "; ".join(problems)

    # -- compress ------------------------------------------------------------

    @_RELAXED
    @given(data=_PAYLOADS)
    def test_compress_returns_none_or_fewer_bytes_than_it_was_given(self, data: bytes) -> None:
        packed = self.make_compressor().compress(data)
        assert packed is None or (type(packed) is bytes and len(packed) < len(data))

    @_RELAXED
    @given(data=_PAYLOADS)
    def test_what_compress_returns_decompresses_to_the_original(self, data: bytes) -> None:
        compressor = self.make_compressor()
        packed = compressor.compress(data)
        if packed is not None:
            restored = compressor.decompress(packed, len(data))
            assert type(restored) is bytes and restored == data

    @pytest.mark.parametrize("data", [b"", b"x", _incompressible(64 * 1024), b"\x00" * _MIB],
                             ids=["empty", "one byte", "incompressible", "zeros"])
    def test_empty_tiny_incompressible_and_repetitive_data_survive(self, data: bytes) -> None:
        compressor = self.make_compressor()
        packed = compressor.compress(data)
        if packed is not None:
            assert compressor.decompress(packed, len(data)) == data

    def test_one_instance_serves_many_payloads_in_turn(self) -> None:
        compressor = self.make_compressor()
        payloads = [bytes([index]) * (100 + 997 * index) for index in range(1, 20)]
        packed = [self._sent_form(compressor, data) for data in payloads]
        restored = [compressor.decompress(item, _MIB) for item in reversed(packed)]
        assert restored == payloads[::-1]

    # -- the output limit ----------------------------------------------------

    def test_output_of_exactly_the_limit_is_allowed(self) -> None:
        compressor = self.make_compressor()
        data = b"exactly " * 10_000
        assert compressor.decompress(self._sent_form(compressor, data), len(data)) == data

    def test_output_one_byte_over_the_limit_raises_decompression_limit_exceeded(self) -> None:
        compressor = self.make_compressor()
        data = b"one over " * 10_000
        with pytest.raises(DecompressionLimitExceeded):
            compressor.decompress(self._sent_form(compressor, data), len(data) - 1)

    @_RELAXED
    @given(data=_PAYLOADS, limit=st.integers(0, 1 << 17))
    def test_decompress_returns_the_original_within_the_limit_and_refuses_beyond_it(
        self, data: bytes, limit: int
    ) -> None:
        compressor = self.make_compressor()
        packed = compressor.compress(data)
        if packed is None:
            return
        if len(data) <= limit:
            assert compressor.decompress(packed, limit) == data
        else:
            with pytest.raises(DecompressionLimitExceeded):
                compressor.decompress(packed, limit)

    def test_a_bomb_raises_decompression_limit_exceeded(self) -> None:
        compressor = self.make_compressor()
        bomb = self._sent_form(compressor, bytes(self.bomb_size))
        with pytest.raises(DecompressionLimitExceeded):
            compressor.decompress(bomb, self.bomb_limit)

    def test_a_bomb_is_refused_without_being_inflated_in_memory(self) -> None:
        compressor = self.make_compressor()
        bomb = self._sent_form(compressor, bytes(self.bomb_size))
        already_tracing = tracemalloc.is_tracing()
        if not already_tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        try:
            with pytest.raises(DecompressionLimitExceeded):
                compressor.decompress(bomb, self.bomb_limit)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            if not already_tracing:
                tracemalloc.stop()
        assert peak <= self.bomb_memory, f"decompressing the bomb took {peak} bytes at its peak"

    # -- corrupt input -------------------------------------------------------

    @_RELAXED
    @given(data=st.binary(max_size=1024), limit=st.integers(0, 1 << 16))
    def test_random_bytes_decompress_within_the_limit_or_raise_decompression_error(
        self, data: bytes, limit: int
    ) -> None:
        try:
            restored = self.make_compressor().decompress(data, limit)
        except DecompressionError:
            return
        assert type(restored) is bytes and len(restored) <= limit

    @_RELAXED
    @given(data=_COMPRESSIBLE, position=st.integers(0, 1 << 16), byte=st.integers(1, 255),
           cut=st.booleans())
    def test_damaged_compressed_data_decompresses_within_the_limit_or_raises_decompression_error(
        self, data: bytes, position: int, byte: int, cut: bool
    ) -> None:
        compressor = self.make_compressor()
        payload = _decompressible(compressor, data)
        if payload is None:
            return
        damaged = bytearray(payload)
        at = position % max(len(damaged), 1)
        if cut:
            del damaged[at:]
        elif damaged:
            damaged[at] ^= byte
        try:
            restored = compressor.decompress(bytes(damaged), len(data))
        except DecompressionError:
            return
        assert type(restored) is bytes and len(restored) <= len(data)
