"""Transaction markers of the transaction coordinator's IO edge (TxnRuntime): the
control batches of a prepared transaction written to every partition it touched.

A marker goes to its partition's leader: a local append (which completes the
transactional offsets of a ``__consumer_offsets`` partition) or one
WriteTxnMarkers request per other broker, all at once. The transaction is
completed (Complete* appended) only once every marker is written; the markers
that failed stay pending and are retried by the periodic work, those of a deleted
partition are dropped as Kafka drops them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from strom.common.names import OFFSETS_TOPIC
from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.broker.broker import Broker
    from strom.coordinator.txn.coordinator import MarkerJob, TransactionCoordinator, TxnResult

log = logging.getLogger(__name__)

# Marker errors expected while leadership moves: retried without a warning.
_RETRIABLE_MARKER_ERRORS = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.NETWORK_EXCEPTION,
        ErrorCode.BROKER_NOT_AVAILABLE,
        ErrorCode.NOT_ENOUGH_REPLICAS,
        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        ErrorCode.REQUEST_TIMED_OUT,
    }
)


class TxnMarkers:
    """TxnRuntime's markers; the host class provides ``broker``, ``coordinator``,
    ``commit_timeout_s`` and ``execute``."""

    broker: Broker
    pending_markers: dict[str, MarkerJob]
    commit_timeout_s: float

    if TYPE_CHECKING:

        @property
        def coordinator(self) -> TransactionCoordinator: ...

        async def execute(self, result: TxnResult) -> ErrorCode: ...

    async def write_marker(
        self,
        tp: TopicPartition,
        producer_id: int,
        producer_epoch: int,
        commit: bool,
        coordinator_epoch: int,
    ) -> ErrorCode:
        """Append one transaction marker to a local partition."""
        from strom.protocol.records import build_control_batch  # not needed at start

        now = self.broker.now_ms()
        batch = build_control_batch(producer_id, producer_epoch, commit, coordinator_epoch, now)
        try:
            await self.broker.replicas.append_committed(tp, batch, now, self.commit_timeout_s)
        except KafkaError as e:
            return ErrorCode(e.code)
        if tp.topic == OFFSETS_TOPIC:
            shard = self.broker.groups.shards.get(tp.partition)
            if shard is not None:  # transactional offsets become visible (or are dropped)
                shard.complete_txn(producer_id, commit)
        return ErrorCode.NONE

    def _marker_done(self, tp: TopicPartition, error: ErrorCode) -> bool:
        if error == ErrorCode.NONE:
            return True
        if error == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            topic = self.broker.topic(tp.topic)
            if topic is None or not 0 <= tp.partition < len(topic.partitions):
                return True  # the partition was deleted: Kafka drops its markers too
        level = logging.DEBUG if error in _RETRIABLE_MARKER_ERRORS else logging.WARNING
        log.log(level, "writing a transaction marker to %s failed (%s); will retry", tp, error.name)
        return False

    async def _write_markers(self, job: MarkerJob) -> dict[TopicPartition, ErrorCode]:
        """Every marker of ``job`` to its partition's leader: local appends here, one
        WriteTxnMarkers request per other broker (all at once)."""
        by_leader: dict[int, list[TopicPartition]] = {}
        for tp in sorted(job.partitions):
            leader = self.broker.image.leader(tp)
            if self.broker.cluster is None:
                leader = self.broker.node_id
            by_leader.setdefault(leader, []).append(tp)
        results: dict[TopicPartition, ErrorCode] = {}

        async def local(tps: list[TopicPartition]) -> None:
            for tp in tps:
                results[tp] = await self.write_marker(
                    tp, job.producer_id, job.producer_epoch, job.commit, job.coordinator_epoch
                )

        async def remote(node: int, tps: list[TopicPartition]) -> None:
            results.update(await self._remote_markers(node, job, tps))

        await asyncio.gather(
            *(
                local(tps) if node == self.broker.node_id else remote(node, tps)
                for node, tps in by_leader.items()
            )
        )
        return results

    async def _remote_markers(
        self, node: int, job: MarkerJob, tps: list[TopicPartition]
    ) -> dict[TopicPartition, ErrorCode]:
        if node < 0:
            return dict.fromkeys(tps, ErrorCode.LEADER_NOT_AVAILABLE)
        by_topic: dict[str, list[int]] = {}
        for tp in tps:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        # the codec is imported with the first markers for another broker (a cluster)
        from strom.protocol.generated.write_txn_markers import WriteTxnMarkersRequest as W

        req = W(
            markers=[
                W.WritableTxnMarker(
                    producer_id=job.producer_id,
                    producer_epoch=job.producer_epoch,
                    transaction_result=job.commit,
                    topics=[W.WritableTxnMarkerTopic(t, ps) for t, ps in by_topic.items()],
                    coordinator_epoch=job.coordinator_epoch,
                )
            ]
        )
        try:
            resp = await self.broker.peers.send(node, req)
        except KafkaError as e:
            return dict.fromkeys(tps, ErrorCode(e.code) if e.code else ErrorCode.NETWORK_EXCEPTION)
        out = dict.fromkeys(tps, ErrorCode.UNKNOWN_SERVER_ERROR)
        for marker in resp.markers:
            for t in marker.topics:
                for p in t.partitions:
                    out[TopicPartition(t.name, p.partition_index)] = ErrorCode(p.error_code)
        return out

    async def send_markers(self, job: MarkerJob) -> bool:
        """Write the markers of ``job``; complete the transaction when all are written."""
        # Here, not at the top: dataclasses costs ~1 ms to import, and a broker imports
        # this module at start, before any transaction (issue 15).
        from dataclasses import replace

        failed = set()
        for tp, error in (await self._write_markers(job)).items():
            if not self._marker_done(tp, error):
                failed.add(tp)
        if failed:
            self.pending_markers[job.transactional_id] = replace(job, partitions=frozenset(failed))
            return False
        self.pending_markers.pop(job.transactional_id, None)
        result = self.coordinator.complete_txn(job, self.broker.now_ms())
        if result.records:
            error = await self.execute(result)
            if error:
                self.pending_markers[job.transactional_id] = replace(job, partitions=frozenset())
                return False
        return True

    async def retry_markers(self) -> None:
        """The periodic work's retry of every pending marker job."""
        for job in list(self.pending_markers.values()):
            await self.send_markers(job)
