"""Payloads to objects, within the node's byte budgets: a frame's codec and compressor undone.

Three limits bound what a peer can make this node do, whatever it sends:

- a frame alone decompresses to at most ``max_message_size``;
- the compressed frames of one packet decompress to at most
  ``max(max_message_size, MAX_GROUPED_EXPANSION)`` together (a sender's coalescer
  never groups more), each frame decompressed with what its packet has left as
  its limit, so a frame that declares more is refused before any work;
- the node decompresses at most ``max_decompression_rate`` bytes a second over
  every source (a burst of a quarter of that, or one packet's budget), drawn
  from a credit that is refilled from the clock only once it is spent, so
  honest traffic under the rate never reads the clock.

A payload that cannot be decoded is counted (in the packet's counters) and
logged, rate-limited, and comes back as :data:`FAILED`; nothing a peer sends
raises out of :meth:`PayloadDecoder.decode`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ..errors import CodecError, CompressionError, DecompressionLimitExceeded, UnknownPlugin
from ..interfaces import Codec, Compressor, endpoint_url
from ..observe.ratelog import RateLimitedLog
from ..observe.stats import Counters
from .coalesce import MAX_GROUPED_EXPANSION
from .events import Arrival
from .wire import Frame

__all__ = ["FAILED", "PayloadDecoder"]

FAILED: Final = object()
"""What :meth:`PayloadDecoder.decode` returns for a payload it dropped (counted, logged)."""


class PayloadDecoder:
    def __init__(self, codec: Callable[[str], Codec], decompressor: Callable[[str], Compressor],
                 max_message_size: int, max_decompression_rate: int,
                 clock: Callable[[], float], log: RateLimitedLog) -> None:
        self._codec = codec
        self._decompressor = decompressor
        self._decoders: dict[str, Callable[[bytes], object]] = {}
        """Each codec's ``decode``, by the codec's name."""
        self._max_message_size = max_message_size
        self.packet_expansion: int = max(max_message_size, MAX_GROUPED_EXPANSION)
        """What the compressed frames of one packet may decompress to together."""
        self._rate = max_decompression_rate
        self._burst = max(max_decompression_rate // 4, self.packet_expansion)
        self._credit = self._burst
        self._clock = clock
        self._refilled_at = clock()
        self._log = log

    def decode(self, frame: Frame, payload: bytes, arrival: Arrival) -> object:
        """``payload``, in ``frame``'s codec and compressor, as an object (its decoded size
        in ``arrival.decoded_size``), or :data:`FAILED`."""
        counters = arrival.counters
        try:
            decode = self._decoders.get(frame.codec)
            if decode is None:
                decode = self._decoders[frame.codec] = self._codec(frame.codec).decode
            if frame.compressor:
                budget = arrival.expansion_left
                if budget <= 0:
                    return self._over_budget(arrival)
                credit = self._credit
                if credit <= 0 and (credit := self._refill()) <= 0:
                    return self._rate_limited(arrival)
                decompressor = self._decompressor(frame.compressor)
                # At most what the packet has left: a frame that declares more is
                # refused before any work, one that does not is cut off there. The
                # credit may go below zero by one message: what it owes is earned back
                # before the next frame is decompressed.
                payload = decompressor.decompress(payload, min(budget, self._max_message_size))
                arrival.expansion_left = budget - len(payload)
                self._credit = credit - len(payload)
            elif len(payload) > self._max_message_size:
                counters.oversize += 1
                return FAILED
            arrival.decoded_size = len(payload)
            return decode(payload)
        except DecompressionLimitExceeded as exc:
            if arrival.expansion_left < self._max_message_size:
                return self._over_budget(arrival)
            counters.oversize += 1
            self._log.warning("oversize", "dropped a frame from %s that decompresses past the "
                              "message size limit: %s", _where(arrival), exc)
        except UnknownPlugin as exc:
            counters.unsupported_codec += 1
            self._log.warning("unsupported_codec", "dropped a frame from %s: %s",
                              _where(arrival), exc)
        except (CodecError, CompressionError) as exc:
            counters.undecodable += 1
            self._log.warning("undecodable", "dropped an undecodable frame from %s: %s",
                              _where(arrival), exc)
        except Exception as exc:  # noqa: BLE001 - a plugin's bug costs this frame only
            count_internal_error(self._log, counters,
                                 f"a frame from {_where(arrival)} in codec {frame.codec!r}, "
                                 f"compressor {frame.compressor or 'none'!r}", exc)
        return FAILED

    def _refill(self) -> int:
        """The decompression credit, refilled for the time since it last was."""
        now = self._clock()
        earned = int((now - self._refilled_at) * self._rate)
        self._refilled_at = now
        credit = min(self._credit + earned, self._burst)
        self._credit = credit
        return credit

    def _rate_limited(self, arrival: Arrival) -> object:
        """Drop a compressed frame the node's decompression rate has no room for now."""
        arrival.counters.decompression_limited += 1
        self._log.warning("decompression_limited", "dropped a compressed frame from %s: the "
                          "node decompresses at most max_decompression_rate = %d bytes a "
                          "second", _where(arrival), self._rate)
        return FAILED

    def _over_budget(self, arrival: Arrival) -> object:
        """Drop a compressed frame that would take its packet past the budget, and
        decompress nothing more of that packet: no sender's coalescer makes such a packet."""
        arrival.expansion_left = 0
        arrival.counters.over_budget += 1
        self._log.warning("over_budget", "dropped a compressed frame from %s: its packet's "
                          "frames decompress past %d bytes together, the most a sender puts "
                          "in one packet", _where(arrival), self.packet_expansion)
        return FAILED


def count_internal_error(rate_log: RateLimitedLog, counters: Counters, what: str,
                         error: Exception) -> None:
    """Count and log (rate-limited, with its traceback) what a plugin or the node's own
    code raised that it should not have, while handling ``what``."""
    counters.internal_errors += 1
    rate_log.error("internal_error", "an unexpected %s while handling %s, which is "
                   "dropped: %s", type(error).__name__, what, error, exc_info=error)


def _where(arrival: Arrival) -> str:
    return endpoint_url(arrival.scheme, arrival.source)

