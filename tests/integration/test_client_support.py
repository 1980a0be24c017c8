"""Helpers (no tests) for tests/integration/test_client_*.py: topics, batch counts, features."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import NoReturn

import pytest

from strom.client.aio.client import AIOClient
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.generated.fetch import FetchRequest, FetchResponse
from strom.protocol.records import iter_batches
from strom.testing.kafka import create_topic as _create_topic

TIMEOUT_S = 30.0


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    _create_topic(bootstrap, topic, partitions)


async def _api_keys(bootstrap: str) -> set[int]:
    async with AIOClient({"bootstrap.servers": bootstrap}) as client:
        conn = await client.any_connection()
        return set(conn.versions)


def broker_supports(bootstrap: str, *keys: ApiKey) -> bool:
    """True when the broker's ApiVersions lists every API in ``keys``."""
    have = asyncio.run(_api_keys(bootstrap))
    return all(int(k) in have for k in keys)


def missing_apis(bootstrap: str, keys: Iterable[ApiKey]) -> list[str]:
    have = asyncio.run(_api_keys(bootstrap))
    return [k.name for k in keys if int(k) not in have]


def lacks(broker_kind: str, what: str) -> NoReturn:
    """The broker under test lacks a feature: the reference broker may (the test skips);
    strom must not (the test fails: a skip would hide the regression)."""
    if broker_kind == "reference":
        pytest.skip(f"the reference broker {what}")
    pytest.fail(f"strom's broker {what}", pytrace=False)


def require_apis(bootstrap: str, broker_kind: str, *keys: ApiKey) -> None:
    """Stop unless the broker's ApiVersions lists every API in ``keys`` (see :func:`lacks`)."""
    missing = missing_apis(bootstrap, keys)
    if missing:
        lacks(broker_kind, f"does not advertise {', '.join(missing)} in ApiVersions")


async def _batches(bootstrap: str, topic: str, partition: int) -> list[int]:
    """Record counts of the batches stored in a partition, in log order."""
    async with AIOClient({"bootstrap.servers": bootstrap}) as client:
        leader = await client.leader_for(TopicPartition(topic, partition))
        counts: list[int] = []
        offset = 0
        while True:
            request = FetchRequest(
                replica_id=-1,
                max_wait_ms=200,
                min_bytes=1,
                max_bytes=50_000_000,
                topics=[
                    FetchRequest.FetchTopic(
                        topic=topic,
                        partitions=[
                            FetchRequest.FetchPartition(
                                partition=partition,
                                fetch_offset=offset,
                                partition_max_bytes=50_000_000,
                            )
                        ],
                    )
                ],
            )
            response: FetchResponse = await client.send(leader, request)
            parts = [p for t in response.responses for p in t.partitions]
            data = parts[0].records if parts else None
            if not data:
                return counts
            raw = bytes(data)
            before = offset
            for header, _ in iter_batches(raw):
                if header.last_offset < offset:
                    continue
                counts.append(header.records_count)
                offset = header.next_offset
            if offset == before:
                return counts


def batch_counts(bootstrap: str, topic: str, partition: int = 0) -> list[int]:
    return asyncio.run(_batches(bootstrap, topic, partition))
