"""AIOPartitionReader: fetch records from (topic, partition, offset).

No consumer group: the caller holds positions. One Fetch request per leader
covers all the partitions asked for (sessionless, session_id 0, epoch -1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from strom.client.aio.client import AIOClient
from strom.client.config import ClientConfig, ConfigDict
from strom.client.errors import raise_for
from strom.client.fetcher import FetchedRecords, aborted_transactions, fetch_request, parse_records
from strom.common.types import TopicPartition
from strom.protocol.generated.fetch import FetchRequest, FetchResponse


class AIOPartitionReader:
    """Reads records by (topic, partition, offset) without a consumer group;
    use ``async with`` or start() and close()."""

    def __init__(self, config: ConfigDict | ClientConfig | AIOClient | None = None) -> None:
        """From a config, or sharing an AIOClient (which close() then leaves open)."""
        self._owns_client = not isinstance(config, AIOClient)
        self.client = config if isinstance(config, AIOClient) else AIOClient(config)
        self.config = self.client.config

    async def __aenter__(self) -> AIOPartitionReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bootstrap the client: connect to a bootstrap server and load the broker list."""
        await self.client.bootstrap()

    async def close(self) -> None:
        """Close the client's connections, unless the client was passed in (shared)."""
        if self._owns_client:
            await self.client.close()

    async def fetch(
        self, topic: str, partition: int, offset: int, *, max_wait_ms: int | None = None
    ) -> FetchedRecords:
        """Fetch one partition from ``offset`` (no records when there are none yet);
        a partition error raises, e.g. OFFSET_OUT_OF_RANGE."""
        tp = TopicPartition(topic, partition)
        result = (await self.fetch_many({tp: offset}, max_wait_ms=max_wait_ms))[tp]
        raise_for(result.error_code, f"partition {tp} at offset {offset}")
        return result

    async def fetch_many(
        self, positions: Mapping[TopicPartition, int], *, max_wait_ms: int | None = None
    ) -> dict[TopicPartition, FetchedRecords]:
        """Fetch every partition from its offset.

        Partition errors are returned in ``error_code``; request errors raise KafkaError.
        """
        groups: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in positions:
            groups[await self.client.leader_for(tp)].append(tp)
        out: dict[TopicPartition, FetchedRecords] = {}
        for leader, tps in groups.items():
            request = self._request({tp: positions[tp] for tp in tps}, max_wait_ms)
            response: FetchResponse = await self.client.send(leader, request)
            raise_for(response.error_code, "fetch")
            for t in response.responses:
                for p in t.partitions:
                    tp = TopicPartition(t.topic, p.partition_index)
                    if tp not in positions:
                        continue
                    if p.error_code:
                        out[tp] = FetchedRecords([], positions[tp], error_code=p.error_code)
                        continue
                    records, next_offset = parse_records(
                        p.records,
                        positions[tp],
                        aborted=aborted_transactions(p),
                        read_committed=self.config.isolation_level == 1,
                    )
                    out[tp] = FetchedRecords(
                        records,
                        next_offset,
                        p.high_watermark,
                        p.log_start_offset,
                        p.last_stable_offset,
                    )
        for tp, offset in positions.items():
            out.setdefault(tp, FetchedRecords([], offset))
        return out

    def _request(
        self, positions: Mapping[TopicPartition, int], max_wait_ms: int | None
    ) -> FetchRequest:
        cfg = self.config
        return fetch_request(
            positions,
            max_wait_ms=cfg.fetch_max_wait_ms if max_wait_ms is None else max_wait_ms,
            min_bytes=cfg.fetch_min_bytes,
            max_bytes=cfg.fetch_max_bytes,
            partition_max_bytes=cfg.max_partition_fetch_bytes,
            isolation_level=cfg.isolation_level,
        )
