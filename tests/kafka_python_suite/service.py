"""``test.service`` for kafka-python's own integration suite, which its source release
leaves out: the suite's fixtures import it. Only the external service is used here (the
suite runs against a broker started by tests/integration/test_kafka_python_suite.py)."""

from __future__ import annotations

__all__ = ["ExternalService", "SpawnedService"]


class ExternalService:
    """A service already running at host:port."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


class SpawnedService:
    """Not available: the suite only ever gets an external broker here."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("kafka-python's suite runs against an external broker here (KAFKA_URI)")
