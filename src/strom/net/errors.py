"""Connection errors: KafkaError with a Kafka error code, as the client raises them."""

from __future__ import annotations

from strom.protocol.errors import ErrorCode, KafkaError


class KafkaTimeoutError(KafkaError):
    """A request, connection or bootstrap did not complete in time."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.REQUEST_TIMED_OUT, message)


class KafkaConnectionError(KafkaError):
    """A broker could not be reached or the connection broke."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.NETWORK_EXCEPTION, message)
