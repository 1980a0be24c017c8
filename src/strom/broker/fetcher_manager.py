"""Which replica fetcher follows which partition (Kafka's ReplicaFetcherManager).

Only a broker of a cluster follows partitions: the fetchers' code
(:mod:`strom.broker.replica_fetcher`, with its connections and codecs) is imported
with the first partition that follows a leader, not at every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strom.broker.broker import Broker
    from strom.broker.replica_fetcher import ReplicaFetcher
    from strom.common.types import TopicPartition
    from strom.replication.partition import Partition
    from strom.storage.log import PartitionLog


class ReplicaFetcherManager:
    """Which fetcher follows which partition: by leader, then by partition hash."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.num_fetchers = broker.config.get_int("num.replica.fetchers")
        self.fetchers: dict[tuple[int, int], ReplicaFetcher] = {}
        self._where: dict[TopicPartition, tuple[int, int]] = {}

    def follow(self, tp: TopicPartition, part: Partition[PartitionLog]) -> None:
        """``part`` became (or stays with a new epoch) a follower of ``part.leader_id``."""
        self.unfollow(tp)
        if part.leader_id < 0:
            return  # no leader yet: wait for the next LeaderAndIsr
        key = (part.leader_id, hash(tp) % self.num_fetchers)
        fetcher = self.fetchers.get(key)
        if fetcher is None:
            from strom.broker.replica_fetcher import ReplicaFetcher  # see the module

            fetcher = ReplicaFetcher(self.broker, *key)
            self.fetchers[key] = fetcher
            fetcher.start()
        fetcher.add(tp, part)
        self._where[tp] = key

    def unfollow(self, tp: TopicPartition) -> None:
        key = self._where.pop(tp, None)
        if key is not None and key in self.fetchers:
            self.fetchers[key].remove(tp)

    async def shutdown(self) -> None:
        for fetcher in list(self.fetchers.values()):
            await fetcher.stop()
        self.fetchers.clear()
