"""Finding group and transaction coordinators, and retrying coordinator requests.

FindCoordinator v0-3 asks for one key; v4+ takes a list. Retriable errors
(COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
CONCURRENT_TRANSACTIONS, network errors) are retried with ``retry.backoff.ms``
until the deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time

from strom.client.aio.client import AIOClient
from strom.client.aio.connection import BrokerConnection
from strom.client.errors import error_for
from strom.client.wait_log import WaitLog
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode, KafkaError
from strom.protocol.generated.find_coordinator import (
    FindCoordinatorRequest,
    FindCoordinatorResponse,
)

log = logging.getLogger(__name__)

GROUP = 0
TRANSACTION = 1

# Errors after which the coordinator must be looked up again.
COORDINATOR_MOVED = frozenset(
    {ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR, ErrorCode.NETWORK_EXCEPTION}
)


async def find_coordinator(
    client: AIOClient, key: str, key_type: int, *, timeout_ms: int | None = None
) -> BrokerConnection:
    """A connection to the coordinator of ``key`` (a group id or transactional id)."""
    budget = client.config.request_timeout_ms if timeout_ms is None else timeout_ms
    deadline = time.monotonic() + budget / 1000
    what = "group" if key_type == GROUP else "transactional id"
    notice = WaitLog()
    while True:
        try:
            return await _find_once(client, key, key_type, what)
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() >= deadline:
                raise
            if notice.due():
                log.warning(
                    f"[clientId={client.config.client_id}] Waiting for the coordinator of "
                    f"{what} {key!r} ({exc}); retrying for up to {budget} ms."
                )
        await asyncio.sleep(client.config.retry_backoff_ms / 1000)


async def _find_once(client: AIOClient, key: str, key_type: int, what: str) -> BrokerConnection:
    conn = await client.any_connection()
    version = conn.versions.get(ApiKey.FIND_COORDINATOR, 0)
    if version >= 4:
        request = FindCoordinatorRequest(key_type=key_type, coordinator_keys=[key])
    else:
        request = FindCoordinatorRequest(key=key, key_type=key_type)
    response: FindCoordinatorResponse = await conn.send(request, version=version)
    if version >= 4:
        if not response.coordinators:
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"no coordinator for {key!r}")
        entry = response.coordinators[0]
        code, message, host, port = entry.error_code, entry.error_message, entry.host, entry.port
    else:
        code, message = response.error_code, response.error_message
        host, port = response.host, response.port
    err = error_for(code, f"FindCoordinator for {what} {key!r}", message)
    if err is not None:
        raise err
    return await client.connect(host, port)


def now_ms() -> int:
    """Wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
