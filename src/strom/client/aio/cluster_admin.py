"""Cluster admin operations mixed into AIOAdmin: partitions with their eligible
leader replicas (DescribeTopicPartitions), each broker's API versions,
client quotas (DescribeClientQuotas / AlterClientQuotas) and UnregisterBroker.

An API the broker does not list in its ApiVersions answer raises
UNSUPPORTED_VERSION naming the API; nothing is made up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from strom.client.admin_types import (
    ClientQuotaEntity,
    PartitionInfo,
    QuotaFilterComponent,
    TopicDescription,
)
from strom.client.aio.client import AIOClient
from strom.client.errors import raise_for
from strom.client.metadata import BrokerMetadata
from strom.protocol.generated.alter_client_quotas import AlterClientQuotasRequest
from strom.protocol.generated.describe_client_quotas import DescribeClientQuotasRequest
from strom.protocol.generated.describe_topic_partitions import (
    DescribeTopicPartitionsRequest,
    DescribeTopicPartitionsResponse,
)
from strom.protocol.generated.unregister_broker import UnregisterBrokerRequest

_DTP = DescribeTopicPartitionsRequest
_ACQ = AlterClientQuotasRequest


class ClusterAdminMixin:
    """Cluster operations; the host class provides ``client``."""

    client: AIOClient

    async def describe_topic_partitions(
        self, names: Iterable[str], *, partition_limit: int = 2000
    ) -> dict[str, TopicDescription]:
        """DescribeTopicPartitions (paged by ``partition_limit`` partitions per response):
        topics with their partitions' ELR and last known ELR. A topic error raises."""
        wanted = sorted(set(names))
        out: dict[str, TopicDescription] = {}
        cursor: _DTP.Cursor | None = None
        while wanted:
            request = _DTP([_DTP.TopicRequest(n) for n in wanted], partition_limit, cursor)
            response: DescribeTopicPartitionsResponse = await self.client.send(None, request)
            for t in response.topics:
                name = t.name or ""
                raise_for(t.error_code, f"topic {name!r}")
                parts = [partition_info(p) for p in t.partitions]
                known = out.get(name)
                if known is not None:
                    parts = known.partitions + parts
                out[name] = TopicDescription(name, t.topic_id, t.is_internal, parts)
            if response.next_cursor is None:
                break
            c = response.next_cursor
            cursor = _DTP.Cursor(c.topic_name, c.partition_index)
            wanted = [n for n in wanted if n >= c.topic_name]
        return out

    async def broker_api_versions(self) -> dict[BrokerMetadata, dict[int, tuple[int, int]]]:
        """Each broker's ApiVersions answer: api key -> (min, max) version, by broker."""
        await self.client.refresh_metadata([])
        out: dict[BrokerMetadata, dict[int, tuple[int, int]]] = {}
        for node_id in sorted(self.client.cluster.brokers):
            conn = await self.client.node_connection(node_id)
            out[self.client.cluster.brokers[node_id]] = dict(conn.broker_versions)
        return out

    async def describe_client_quotas(
        self, components: Iterable[QuotaFilterComponent], *, strict: bool = False
    ) -> dict[ClientQuotaEntity, dict[str, float]]:
        """DescribeClientQuotas: the quotas of the entities matching every component
        (``strict``: entities with no other types). An error raises."""
        request = DescribeClientQuotasRequest(
            components=[
                DescribeClientQuotasRequest.ComponentData(c.entity_type, c.match_type, c.match)
                for c in components
            ],
            strict=strict,
        )
        response = await self.client.send(None, request)
        raise_for(response.error_code, "describe client quotas", response.error_message)
        return {
            ClientQuotaEntity(tuple((e.entity_type, e.entity_name) for e in entry.entity)): {
                v.key: v.value for v in entry.values
            }
            for entry in response.entries or ()
        }

    async def alter_client_quotas(
        self, entity: ClientQuotaEntity, ops: Mapping[str, float | None]
    ) -> None:
        """AlterClientQuotas for one entity: set each key to its value, or remove it
        (None). The entity's error raises."""
        request = _ACQ(
            entries=[
                _ACQ.EntryData(
                    entity=[_ACQ.EntityData(kind, name) for kind, name in entity.entries],
                    ops=[
                        _ACQ.OpData(key, 0.0 if value is None else value, value is None)
                        for key, value in ops.items()
                    ],
                )
            ]
        )
        response = await self.client.send(None, request)
        for entry in response.entries:
            raise_for(entry.error_code, "alter client quotas", entry.error_message)

    async def unregister_broker(self, broker_id: int) -> None:
        """UnregisterBroker (KRaft clusters only): UNSUPPORTED_VERSION from a broker that
        does not list the API, as every broker of a ZooKeeper cluster; an error raises."""
        response = await self.client.send(None, UnregisterBrokerRequest(broker_id))
        raise_for(response.error_code, f"broker {broker_id}", response.error_message)


def partition_info(p: Any) -> PartitionInfo:
    """A partition of a Metadata or DescribeTopicPartitions response (same field names;
    only the latter has ELR fields)."""
    elr = getattr(p, "eligible_leader_replicas", None)
    last_known = getattr(p, "last_known_elr", None)
    return PartitionInfo(
        p.partition_index,
        p.leader_id,
        tuple(p.replica_nodes),
        tuple(p.isr_nodes),
        tuple(p.offline_replicas),
        p.leader_epoch,
        None if elr is None else tuple(elr),
        None if last_known is None else tuple(last_known),
    )
