"""Transaction admin operations (Kafka's kafka-transactions.sh), mixed into AIOAdmin.

ListTransactions goes to every broker (each lists the transactional ids it
coordinates), DescribeTransactions to the coordinator of each transactional
id, DescribeProducers to a partition's leader (or a chosen replica), and an
abort is a WriteTxnMarkers request with an ABORT marker to the leader, as
Kafka's ``Admin.abortTransaction`` sends it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from strom.client.admin_types import (
    AbortTransactionSpec,
    ProducerState,
    TransactionDescription,
    TransactionListing,
)
from strom.client.aio.client import AIOClient
from strom.client.aio.coordinators import TRANSACTION, find_coordinator
from strom.client.errors import raise_for
from strom.common.types import TopicPartition
from strom.protocol.generated.describe_producers import (
    DescribeProducersRequest,
    DescribeProducersResponse,
)
from strom.protocol.generated.describe_transactions import DescribeTransactionsRequest
from strom.protocol.generated.list_transactions import ListTransactionsRequest
from strom.protocol.generated.write_txn_markers import WriteTxnMarkersRequest

if TYPE_CHECKING:
    from strom.client.aio.connection import BrokerConnection

_WTM = WriteTxnMarkersRequest


class TransactionAdminMixin:
    """Transaction operations; the host class provides ``client``."""

    client: AIOClient

    async def list_transactions(
        self,
        *,
        states: Iterable[str] = (),
        producer_ids: Iterable[int] = (),
        duration_ms: int = -1,
    ) -> list[TransactionListing]:
        """ListTransactions on every broker; filters by state names, producer ids and
        (ListTransactions v1+) minimum running time. A broker error raises."""
        await self.client.refresh_metadata([])
        request = ListTransactionsRequest(
            state_filters=list(states),
            producer_id_filters=list(producer_ids),
            duration_filter=duration_ms,
        )
        out: list[TransactionListing] = []
        for node_id in sorted(self.client.cluster.brokers):
            response = await self.client.send(node_id, request)
            raise_for(response.error_code, f"list transactions on broker {node_id}")
            out.extend(
                TransactionListing(t.transactional_id, t.producer_id, t.transaction_state, node_id)
                for t in response.transaction_states
            )
        return out

    async def describe_transactions(
        self, transactional_ids: Iterable[str]
    ) -> dict[str, TransactionDescription]:
        """DescribeTransactions at each id's coordinator; an error (e.g.
        TRANSACTIONAL_ID_NOT_FOUND) raises, naming the id."""
        out: dict[str, TransactionDescription] = {}
        for tid in dict.fromkeys(transactional_ids):
            conn = await find_coordinator(self.client, tid, TRANSACTION)
            response = await conn.send(DescribeTransactionsRequest(transactional_ids=[tid]))
            for s in response.transaction_states:
                raise_for(s.error_code, f"transactional id {s.transactional_id!r}")
                out[s.transactional_id] = TransactionDescription(
                    self._node_id_of(conn),
                    s.transactional_id,
                    s.transaction_state,
                    s.producer_id,
                    s.producer_epoch,
                    s.transaction_timeout_ms,
                    None if s.transaction_start_time_ms < 0 else s.transaction_start_time_ms,
                    tuple(TopicPartition(t.topic, p) for t in s.topics for p in t.partitions),
                )
        return out

    def _node_id_of(self, conn: BrokerConnection) -> int:
        for broker in self.client.cluster.brokers.values():
            if (broker.host, broker.port) == (conn.host, conn.port):
                return broker.node_id
        return -1

    async def describe_producers(
        self, partitions: Iterable[TopicPartition], *, broker_id: int | None = None
    ) -> dict[TopicPartition, list[ProducerState]]:
        """DescribeProducers: the active producers of each partition, asked of its leader
        (or of ``broker_id``'s replica). A partition error raises, naming it."""
        by_node: dict[int, list[TopicPartition]] = {}
        for tp in dict.fromkeys(partitions):
            node = broker_id if broker_id is not None else await self.client.leader_for(tp)
            by_node.setdefault(node, []).append(tp)
        out: dict[TopicPartition, list[ProducerState]] = {}
        for node, tps in by_node.items():
            topics: dict[str, list[int]] = {}
            for tp in tps:
                topics.setdefault(tp.topic, []).append(tp.partition)
            request = DescribeProducersRequest(
                topics=[DescribeProducersRequest.TopicRequest(n, ps) for n, ps in topics.items()]
            )
            response = await self.client.send(node, request)
            for t in response.topics:
                for p in t.partitions:
                    tp = TopicPartition(t.name, p.partition_index)
                    raise_for(p.error_code, f"partition {tp}", p.error_message)
                    out[tp] = [_producer_state(s) for s in p.active_producers]
        return out

    async def abort_transaction(self, spec: AbortTransactionSpec) -> None:
        """Write an ABORT marker for a hanging transaction (WriteTxnMarkers to the
        partition's leader); the partition's error raises."""
        tp = spec.topic_partition
        marker = _WTM.WritableTxnMarker(
            producer_id=spec.producer_id,
            producer_epoch=spec.producer_epoch,
            transaction_result=False,
            topics=[_WTM.WritableTxnMarkerTopic(tp.topic, [tp.partition])],
            coordinator_epoch=spec.coordinator_epoch,
        )
        leader = await self.client.leader_for(tp)
        response = await self.client.send(leader, _WTM(markers=[marker]))
        for m in response.markers:
            for t in m.topics:
                for p in t.partitions:
                    raise_for(p.error_code, f"abort on partition {t.name}-{p.partition_index}")


def _producer_state(s: DescribeProducersResponse.ProducerState) -> ProducerState:
    return ProducerState(
        s.producer_id,
        s.producer_epoch,
        s.last_sequence,
        s.last_timestamp,
        None if s.coordinator_epoch < 0 else s.coordinator_epoch,
        None if s.current_txn_start_offset < 0 else s.current_txn_start_offset,
    )
