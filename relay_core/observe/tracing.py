"""W3C trace context across nodes.

A request frame may carry a ``traceparent`` (W3C Trace Context). The handler's
context remembers the one its request came with, so requests it makes in turn
carry it on. When ``opentelemetry-api`` is installed (the ``otel`` extra), the
current OpenTelemetry span is what gets sent, and a received traceparent
becomes the handler's current remote parent, so spans started by the handler
join the caller's trace. Without it, nothing here needs any extra package.
"""

from __future__ import annotations

import contextvars
import importlib
from typing import Any, Final

# Imported by name, as untyped modules: the compiled build is made where the
# optional extra may be missing, and must work with it installed or not.
otel_context: Any
propagate: Any
try:
    otel_context = importlib.import_module("opentelemetry.context")
    propagate = importlib.import_module("opentelemetry.propagate")
except ImportError:  # the optional extra is not installed
    otel_context = propagate = None

__all__ = ["enter_traceparent", "outgoing_traceparent"]

_current_traceparent: Final[contextvars.ContextVar[str]] = contextvars.ContextVar(
    "net_relay_traceparent", default=""
)
_get_traceparent: Final = _current_traceparent.get
_set_traceparent: Final = _current_traceparent.set
_otel_current_context: Any = None if otel_context is None else otel_context.get_current


def outgoing_traceparent() -> str:
    """The traceparent a request sent from this context should carry ("" for none)."""
    if propagate is not None and _otel_current_context is not None and _otel_current_context():
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if carrier.get("traceparent"):
            return carrier["traceparent"]
    return _get_traceparent()


def enter_traceparent(traceparent: str) -> None:
    """Make ``traceparent`` (from a received request) current in this context."""
    if _get_traceparent() == traceparent:
        return
    _set_traceparent(traceparent)
    if propagate is not None and otel_context is not None:
        carrier = {"traceparent": traceparent} if traceparent else {}
        otel_context.attach(propagate.extract(carrier))
