"""Client-side errors: all are KafkaError with a Kafka error code."""

from __future__ import annotations

from strom.net.errors import KafkaConnectionError, KafkaTimeoutError
from strom.protocol.errors import ErrorCode, KafkaError

__all__ = ["KafkaConnectionError", "KafkaTimeoutError", "error_for", "raise_for"]


def error_for(code: int, context: str, message: str | None = None) -> KafkaError | None:
    """A KafkaError for a non-zero response code (``context`` names the resource)."""
    if code == ErrorCode.NONE:
        return None
    try:
        ec = ErrorCode(code)
    except ValueError:
        ec = ErrorCode.UNKNOWN_SERVER_ERROR
    text = f"{context}: {ec.name}" + (f": {message}" if message else "")
    return KafkaError(ec, text)


def raise_for(code: int, context: str, message: str | None = None) -> None:
    """Raise :func:`error_for`'s KafkaError when ``code`` is not NONE."""
    err = error_for(code, context, message)
    if err is not None:
        raise err
