"""A fake runtime around a GroupCoordinatorShard for consumer groups (KIP-848): a metadata
image with topics and racks, a fake clock, the log of appended records, and members that
behave as KIP-848 consumers (:class:`SimMember`)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from strom.coordinator.group.consumer.group import ConsumerGroup
from strom.coordinator.group.consumer.heartbeat import RequestContext
from strom.coordinator.group.coordinator import GroupCoordinatorShard
from strom.metadata.image import BrokerInfo, MetadataImage, PartitionInfo, TopicInfo
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatRequest as Req,
)
from strom.protocol.generated.consumer_group_heartbeat import (
    ConsumerGroupHeartbeatResponse as Resp,
)
from tests.unit.coordinator.harness import Harness

TP = tuple[str, int]


def topic_id(name: str) -> bytes:
    return uuid.uuid5(uuid.NAMESPACE_DNS, name).bytes


def image(
    topics: dict[str, int], racks: dict[int, str] | None = None, replicas: int = 1
) -> MetadataImage:
    """``topics``: name -> partition count; brokers 0..2 (with ``racks``); partition p of
    every topic on brokers p % 3 (and the next ``replicas - 1``)."""
    racks = racks or {}
    brokers = {b: BrokerInfo(b, (), racks.get(b)) for b in range(3)}
    infos = {}
    for name, count in topics.items():
        parts = tuple(
            PartitionInfo(p, p % 3, 0, tuple((p + i) % 3 for i in range(replicas)), ())
            for p in range(count)
        )
        infos[name] = TopicInfo(name, topic_id(name), parts)
    return MetadataImage("cluster", 0, brokers, infos)


class ConsumerHarness(Harness):
    def __init__(self, topics: dict[str, int] | None = None, **config: Any) -> None:
        super().__init__(**config)
        self.image = image(topics or {"t": 6})
        self._names: dict[bytes, str] = {}
        ids = itertools.count(1)
        self.shard = GroupCoordinatorShard(
            self.config,
            image=lambda: self.image,
            uuid_factory=lambda: f"gen-{next(ids)}",
        )

    def cgroup(self, group_id: str = "g") -> ConsumerGroup:
        return self.shard.consumer_groups[group_id]

    def names(self) -> dict[bytes, str]:
        """Topic names by id, of every image so far (deleted topics too)."""
        self._names.update({t.topic_id: t.name for t in self.image.topics.values()})
        return self._names

    def heartbeat_req(self, req: Req, *, version: int = 1, client_id: str = "c") -> Resp:
        ctx = RequestContext(client_id, "/127.0.0.1", version)
        handle = self.call(lambda h: self.shard.consumer_group_heartbeat(h, req, ctx, self.now))
        resp: Resp = self.responses[handle]
        return resp

    def replayed(self) -> GroupCoordinatorShard:
        """A new shard that replayed the log: the state a broker loads after a restart."""
        shard = GroupCoordinatorShard(self.config, image=lambda: self.image)
        for record in self.log:
            shard.replay(record.key, record.value)
        return shard


@dataclass
class SimMember:
    """A KIP-848 consumer: it owns what the last assignment gave it and reports it."""

    h: ConsumerHarness
    member_id: str
    topics: list[str] | None = None
    regex: str | None = None
    instance_id: str | None = None
    rack_id: str | None = None
    assignor: str | None = None
    group: str = "g"
    epoch: int = 0
    owned: set[TP] = field(default_factory=set)
    last: Resp | None = None

    def join(self) -> Resp:
        self.epoch = 0
        self.owned = set()
        req = Req(
            group_id=self.group,
            member_id=self.member_id,
            member_epoch=0,
            instance_id=self.instance_id,
            rack_id=self.rack_id,
            rebalance_timeout_ms=30_000,
            subscribed_topic_names=self.topics if self.topics is not None else [],
            subscribed_topic_regex=self.regex,
            server_assignor=self.assignor,
            topic_partitions=[],
        )
        if self.regex is not None and self.topics is None:
            req.subscribed_topic_names = None
        return self._send(req)

    def heartbeat(self, *, full: bool = False) -> Resp:
        req = Req(group_id=self.group, member_id=self.member_id, member_epoch=self.epoch)
        by_topic: dict[bytes, list[int]] = {}
        for t, p in sorted(self.owned):
            by_topic.setdefault(topic_id(t), []).append(p)
        req.topic_partitions = [Req.TopicPartitions(t, ps) for t, ps in by_topic.items()]
        if full:
            req.rebalance_timeout_ms = 30_000
            req.subscribed_topic_names = self.topics or []
        return self._send(req)

    def leave(self, epoch: int = -1) -> Resp:
        req = Req(
            group_id=self.group,
            member_id=self.member_id,
            member_epoch=epoch,
            instance_id=self.instance_id,
        )
        resp = self.h.heartbeat_req(req)
        self.owned = set()
        return resp

    def _send(self, req: Req) -> Resp:
        resp = self.h.heartbeat_req(req)
        self.last = resp
        if resp.error_code == ErrorCode.NONE:
            self.epoch = resp.member_epoch
            if resp.assignment is not None:
                names = self.h.names()
                self.owned = {
                    (names[tp.topic_id], p)
                    for tp in resp.assignment.topic_partitions
                    for p in tp.partitions
                }
        return resp


def assert_disjoint(members: list[SimMember]) -> None:
    seen: dict[TP, str] = {}
    for m in members:
        for tp in m.owned:
            assert tp not in seen, f"{tp} owned by {seen[tp]} and {m.member_id}"
            seen[tp] = m.member_id


def settle(members: list[SimMember], rounds: int = 10) -> None:
    """Heartbeat every member until nothing changes, checking that no partition is ever
    owned by two members."""
    for _ in range(rounds):
        before = [(m.epoch, frozenset(m.owned)) for m in members]
        for m in members:
            m.heartbeat()
            assert m.last is not None and m.last.error_code == 0, m.last
            assert_disjoint(members)
        if before == [(m.epoch, frozenset(m.owned)) for m in members]:
            return
    raise AssertionError("the group did not settle")
