"""ERROR frame payloads: the map that carries a failure back to the caller.

The payload is the codec's encoding of ``{"code": str, "type": str,
"message": str}`` (plus ``"traceback"`` when the answering node sends them) (docs/protocol.md). Codes a node does not know are kept as
``RemoteError`` so that newer peers can add codes without breaking older ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from ..errors import (
    Overloaded,
    RemoteError,
    RpcError,
    RpcTimeout,
    UnknownActor,
    UnsupportedCodec,
)

__all__ = ["ErrorCode", "error_from_payload", "error_payload"]


class ErrorCode:
    REMOTE_ERROR: Final = "remote_error"
    UNKNOWN_ACTOR: Final = "unknown_actor"
    UNSUPPORTED_CODEC: Final = "unsupported_codec"
    OVERLOADED: Final = "overloaded"
    UNDECODABLE: Final = "undecodable"
    EXPIRED: Final = "expired"
    REPLY_NOT_RESENT: Final = "reply_not_resent"
    """A retry's cached reply is too large to send again to it (docs/protocol.md §6)."""


def error_payload(code: str, error_type: str, message: str,
                  traceback: str = "") -> dict[str, str]:
    """The map for an ERROR frame; ``traceback`` only when the node is configured to send it."""
    payload = {"code": code, "type": error_type, "message": message}
    if traceback:
        payload["traceback"] = traceback
    return payload


_BY_CODE: dict[str, Callable[[str], RpcError]] = {
    ErrorCode.UNKNOWN_ACTOR: UnknownActor,
    ErrorCode.UNSUPPORTED_CODEC: UnsupportedCodec,
    ErrorCode.OVERLOADED: Overloaded,
    ErrorCode.EXPIRED: RpcTimeout,
}


def error_from_payload(payload: object, origin: str) -> RpcError:
    """The exception a caller raises for an ERROR frame's decoded payload."""
    if not isinstance(payload, Mapping):
        return RemoteError("MalformedErrorReply", f"{origin} sent an error reply of {payload!r}")
    code, error_type, message = (str(payload.get(key, "")) for key in ("code", "type", "message"))
    make = _BY_CODE.get(code)
    if make is not None:
        return make(f"{origin}: {message}")
    traceback = payload.get("traceback")
    return RemoteError(error_type or code or "RemoteError", message,
                       traceback if isinstance(traceback, str) else None)
