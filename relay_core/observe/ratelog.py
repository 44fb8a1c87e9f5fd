"""Rate-limited logging for events that an attacker or a broken peer can repeat.

A flood of garbage must not become a flood of log lines: each kind of event
logs at most once per ``interval`` seconds, and the next line says how many
were suppressed in between.
"""

from __future__ import annotations

import logging
import time

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Logs to ``logger`` at most once per ``interval`` seconds for each kind of event,
    counting the lines it holds back and saying how many in the next one."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval
        self._next_allowed: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args: object) -> None:
        """Log ``message`` under ``kind`` unless that kind logged too recently."""
        self._log(logging.WARNING, kind, message, args, None)

    def error(self, kind: str, message: str, *args: object,
              exc_info: BaseException | None = None) -> None:
        """As :meth:`warning`, at level ERROR, with ``exc_info``'s traceback when logged."""
        self._log(logging.ERROR, kind, message, args, exc_info)

    def _log(self, level: int, kind: str, message: str, args: tuple[object, ...],
             exc_info: BaseException | None) -> None:
        now = time.monotonic()
        if now < self._next_allowed.get(kind, 0.0):
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._next_allowed[kind] = now + self._interval
        suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += " (%d similar events suppressed)"
            args = (*args, suppressed)
        self._logger.log(level, message, *args, exc_info=exc_info, extra={"event": kind})
