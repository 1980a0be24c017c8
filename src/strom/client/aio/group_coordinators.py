"""The group coordinators of the admin's group operations, and the retry of requests
sent to them.

Every group request goes to the group's coordinator (FindCoordinator, batched
with v4+). Coordinator errors (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
COORDINATOR_LOAD_IN_PROGRESS) and broken coordinator connections are retried,
finding the coordinator again, until ``request.timeout.ms`` has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from strom.client.aio.client import AIOClient
from strom.client.aio.connection import BrokerConnection
from strom.client.errors import KafkaConnectionError, raise_for
from strom.client.metadata import BrokerMetadata
from strom.client.wait_log import WaitLog
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.find_coordinator import FindCoordinatorRequest

log = logging.getLogger(__name__)
T = TypeVar("T")
# (final error code, result) per group; the code is never a coordinator error.
_Batch = Callable[[BrokerConnection, list[str]], Awaitable[dict[str, tuple[int, T]]]]

COORDINATOR_ERRORS = frozenset(
    {
        ErrorCode.NOT_COORDINATOR,
        ErrorCode.COORDINATOR_NOT_AVAILABLE,
        ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
    }
)


class GroupCoordinatorsMixin:
    """Coordinator lookup for group operations; the host class provides ``client``,
    ``_timeout_ms`` and ``_coordinators``."""

    client: AIOClient
    _timeout_ms: int
    _coordinators: dict[str, BrokerMetadata]

    async def find_coordinator(self, group: str) -> BrokerMetadata:
        """FindCoordinator for one group: its coordinator (see :meth:`find_coordinators`)."""
        return (await self.find_coordinators([group]))[group]

    async def find_coordinators(self, groups: Iterable[str]) -> dict[str, BrokerMetadata]:
        """The coordinator of each group (cached until it answers NOT_COORDINATOR)."""
        wanted = list(dict.fromkeys(groups))
        deadline = time.monotonic() + self._timeout_ms / 1000
        notice = WaitLog()
        while True:
            missing = [g for g in wanted if g not in self._coordinators]
            if not missing:
                return {g: self._coordinators[g] for g in wanted}
            failures = await self._lookup_coordinators(missing)
            if failures and time.monotonic() >= deadline:
                group, code = next(iter(failures.items()))
                raise_for(code, f"coordinator of group {group!r}")
            if failures:
                if notice.due():
                    group, code = next(iter(failures.items()))
                    log.warning(
                        f"Waiting for the coordinator of group {group!r} "
                        f"({ErrorCode(code).name}); retrying for up to {self._timeout_ms} ms."
                    )
                await asyncio.sleep(self.client.config.retry_backoff_ms / 1000)

    async def _lookup_coordinators(self, groups: list[str]) -> dict[str, int]:
        """Ask any broker; cache the answers; return the retriable failures."""
        conn = await self.client.any_connection()
        answers: list[tuple[str, int, str | None, int, str, int]] = []
        if conn.versions.get(ApiKey.FIND_COORDINATOR, -1) >= 4:
            response = await conn.send(FindCoordinatorRequest(key_type=0, coordinator_keys=groups))
            answers = [
                (c.key, c.error_code, c.error_message, c.node_id, c.host, c.port)
                for c in response.coordinators
            ]
        else:
            for group in groups:
                r = await conn.send(FindCoordinatorRequest(key=group, key_type=0))
                answers.append((group, r.error_code, r.error_message, r.node_id, r.host, r.port))
        # a group the answer left out is retried like a coordinator that is not available
        failures: dict[str, int] = {g: ErrorCode.COORDINATOR_NOT_AVAILABLE for g in groups}
        for group, code, message, node_id, host, port in answers:
            failures.pop(group, None)
            if code == ErrorCode.NONE:
                self._coordinators[group] = BrokerMetadata(node_id, host, port)
            elif code in COORDINATOR_ERRORS:
                failures[group] = code
            else:
                raise_for(code, f"coordinator of group {group!r}", message)
        return failures

    async def _per_coordinator(self, groups: Iterable[str], batch: _Batch[T]) -> dict[str, T]:
        """Run ``batch`` once per coordinator for its groups, retrying groups whose
        coordinator moved or is loading. Other error codes raise, naming the group."""
        pending = list(dict.fromkeys(groups))
        out: dict[str, T] = {}
        deadline = time.monotonic() + self._timeout_ms / 1000
        while pending:
            coordinators = await self.find_coordinators(pending)
            by_node: dict[tuple[str, int], list[str]] = defaultdict(list)
            for g in pending:
                by_node[(coordinators[g].host, coordinators[g].port)].append(g)
            retry: dict[str, int] = {}
            for (host, port), node_groups in by_node.items():
                results = await self._on_node(host, port, node_groups, batch)
                for g in node_groups:
                    entry = results.get(g)
                    if entry is None or entry[0] in COORDINATOR_ERRORS:
                        code = ErrorCode.COORDINATOR_NOT_AVAILABLE if entry is None else entry[0]
                        retry[g] = code
                        if code != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
                            self._coordinators.pop(g, None)
                    else:
                        raise_for(entry[0], f"group {g!r}")
                        out[g] = entry[1]
            pending = list(retry)
            if pending and time.monotonic() >= deadline:
                raise_for(retry[pending[0]], f"group {pending[0]!r}")
            if pending:
                await asyncio.sleep(self.client.config.retry_backoff_ms / 1000)
        return out

    async def _on_node(
        self, host: str, port: int, groups: list[str], batch: _Batch[T]
    ) -> dict[str, tuple[int, T]]:
        """``batch`` on one coordinator; {} when the connection fails (then retried)."""
        try:
            conn = await self.client.connect(host, port)
            return await batch(conn, groups)
        except KafkaConnectionError:
            return {}
