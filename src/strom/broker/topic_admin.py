"""Topic administration: checks, replica assignment, creation, deletion, new partitions.

Any broker changes topics by writing to the metadata store (as Kafka's brokers
did through AdminZkClient); the controller (or the embedded store) assigns
leaders, and the request waits until the broker's image shows the result.

Internal topics (``__consumer_offsets``, ``__transaction_state``) are never
auto-created by Metadata; the coordinators create them on first use with
their own partition count and configs, and only once enough brokers are
registered for their replication factor (until then FindCoordinator answers
COORDINATOR_NOT_AVAILABLE). They cannot be deleted, get no new partitions and
keep ``cleanup.policy=compact``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from strom.common.assignment import AssignmentError, assign_replicas
from strom.common.config import ConfigError, validate_topic_configs
from strom.common.names import (
    INTERNAL_TOPICS,
    OFFSETS_TOPIC,
    collision_key,
    topic_name_problem,
)
from strom.metadata.image import MetadataImage, PartitionInfo, TopicInfo
from strom.metadata.store import StoreError
from strom.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from strom.broker.broker import Broker

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 30.0


def internal_topic_problem(name: str, what: str) -> KafkaError | None:
    if name in INTERNAL_TOPICS:
        return KafkaError(
            ErrorCode.INVALID_REQUEST,
            f"Topic {name} is a kafka internal topic and is not allowed to {what}.",
        )
    return None


def _has_leaders(name: str, count: int) -> Callable[[MetadataImage], bool]:
    def ready(image: MetadataImage) -> bool:
        topic = image.topic(name)
        return (
            topic is not None
            and len(topic.partitions) >= count
            and all(p.leader >= 0 for p in topic.partitions)
        )

    return ready


class TopicAdmin:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    # -- checks ---------------------------------------------------------------------
    def check_new_topic(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        assignments: list[tuple[int, ...]] | None,
        configs: Mapping[str, str | None],
    ) -> tuple[list[tuple[int, ...]], dict[str, str]]:
        """Validate a topic creation; return (replica assignment, normalised configs)."""
        image = self.broker.image
        problem = topic_name_problem(name)
        if problem:
            raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
        if name in image.topics:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        key = collision_key(name)
        for other in image.topics:
            if collision_key(other) == key:
                raise KafkaError(
                    ErrorCode.INVALID_TOPIC_EXCEPTION,
                    f"Topic '{name}' collides with existing topic: {other}",
                )
        try:
            normalised = validate_topic_configs(configs)
        except ConfigError as e:
            raise KafkaError(ErrorCode.INVALID_CONFIG, str(e)) from None
        if assignments:
            for replicas in assignments:
                self.check_manual_assignment(replicas)
            return list(assignments), normalised
        return self.assign_replicas(num_partitions, replication_factor), normalised

    def check_manual_assignment(self, replicas: tuple[int, ...]) -> None:
        live = self.broker.image.brokers
        if not replicas or len(set(replicas)) != len(replicas) or not set(replicas) <= set(live):
            raise KafkaError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Invalid replica assignment {list(replicas)}",
            )

    def assign_replicas(
        self,
        num_partitions: int,
        replication_factor: int,
        first_partition: int = 0,
        start_index: int | None = None,
    ) -> list[tuple[int, ...]]:
        cfg = self.broker.config
        if num_partitions == -1:
            num_partitions = cfg.get_int("num.partitions")
        if replication_factor == -1:
            replication_factor = cfg.get_int("default.replication.factor")
        if num_partitions <= 0:
            raise KafkaError(
                ErrorCode.INVALID_PARTITIONS, "Number of partitions must be larger than 0."
            )
        if replication_factor <= 0:
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0."
            )
        brokers = {b.node_id: b.rack for b in self.broker.image.brokers.values()}
        if replication_factor > len(brokers):
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_FACTOR,
                f"Unable to replicate the partition {replication_factor} time(s): The target "
                f"replication factor of {replication_factor} cannot be reached because only "
                f"{len(brokers)} broker(s) are registered.",
            )
        n = len(brokers)
        import random  # with the first topic, not at every broker's start

        start = random.randrange(n) if start_index is None else start_index
        shift = random.randrange(n) if start_index is None else start_index
        try:
            return assign_replicas(
                num_partitions,
                replication_factor,
                brokers,
                start_index=start,
                shift=shift,
                first_partition=first_partition,
            )
        except AssignmentError as e:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, str(e)) from None

    # -- changes ----------------------------------------------------------------------
    async def create(
        self,
        name: str,
        num_partitions: int,
        replication_factor: int,
        assignments: list[tuple[int, ...]] | None = None,
        configs: Mapping[str, str | None] | None = None,
        *,
        wait_s: float = DEFAULT_WAIT_S,
    ) -> TopicInfo:
        """Create a topic and wait (up to ``wait_s``) until every partition has a leader.
        KafkaError(REQUEST_TIMED_OUT) when the leaders are not known in time (the topic
        exists then)."""
        assignment, normalised = self.check_new_topic(
            name, num_partitions, replication_factor, assignments, configs or {}
        )
        topic_id = await self._write_topic(name, assignment, normalised)
        log.info("created topic %s with %d partition(s)", name, len(assignment))
        ready = _has_leaders(name, len(assignment))
        if wait_s > 0 and not await self.broker.wait_for_metadata(ready, wait_s):
            raise KafkaError(
                ErrorCode.REQUEST_TIMED_OUT,
                f"Topic {name} was created but its partitions have no leader yet.",
            )
        topic = self.broker.image.topic(name)
        if topic is None:  # timeout_ms <= 0: answered before the controller acted
            parts = tuple(PartitionInfo(i, -1, 0, r, ()) for i, r in enumerate(assignment))
            topic = TopicInfo(name, topic_id, parts, normalised, name in INTERNAL_TOPICS)
        return topic

    async def _write_topic(
        self, name: str, assignment: list[tuple[int, ...]], configs: dict[str, str]
    ) -> bytes:
        broker = self.broker
        try:
            return await broker.store_call(broker.store.create_topic, name, assignment, configs)
        except StoreError as e:
            raise KafkaError(ErrorCode(e.code), e.message) from None

    async def maybe_auto_create(self, name: str) -> TopicInfo | None:
        """Metadata's auto-creation (auto.create.topics.enable): never internal topics.
        Returns the topic once it has leaders, None when it may not be created or its
        leaders are not known yet (the client retries)."""
        if name in INTERNAL_TOPICS or not self.broker.config.get_bool("auto.create.topics.enable"):
            return None
        assignment, normalised = self.check_new_topic(name, -1, -1, None, {})
        await self._write_topic(name, assignment, normalised)
        log.info("auto-created topic %s with %d partition(s)", name, len(assignment))
        ready = _has_leaders(name, len(assignment))
        if await self.broker.wait_for_metadata(ready, 0.0):
            return self.broker.image.topic(name)
        return None

    def internal_topic_settings(self, name: str) -> tuple[int, int, dict[str, str]]:
        """(partitions, replication factor, configs) of an internal topic."""
        cfg = self.broker.config
        if name == OFFSETS_TOPIC:
            return (
                cfg.get_int("offsets.topic.num.partitions"),
                cfg.get_int("offsets.topic.replication.factor"),
                {
                    "cleanup.policy": "compact",
                    "segment.bytes": str(cfg.get_int("offsets.topic.segment.bytes")),
                    "compression.type": "producer",
                },
            )
        rf = cfg.get_int("transaction.state.log.replication.factor")
        return (
            cfg.get_int("transaction.state.log.num.partitions"),
            rf,
            {
                "cleanup.policy": "compact",
                "compression.type": "uncompressed",
                "min.insync.replicas": str(cfg.get_int("transaction.state.log.min.isr")),
                "segment.bytes": str(cfg.get_int("transaction.state.log.segment.bytes")),
                "unclean.leader.election.enable": "false",
            },
        )

    async def ensure_internal(self, name: str) -> TopicInfo | None:
        """The internal topic ``name``, created with its own settings if missing. None
        while it cannot exist yet (fewer live brokers than its replication factor) or
        its leaders are not known yet: callers answer COORDINATOR_NOT_AVAILABLE."""
        topic = self.broker.image.topic(name)
        if topic is not None:
            return topic
        partitions, rf, configs = self.internal_topic_settings(name)
        live = len(self.broker.image.brokers)
        if live < rf:
            log.warning(
                "cannot create %s yet: its replication factor is %d and %d broker(s) are "
                "registered",
                name,
                rf,
                live,
            )
            return None
        try:
            assignment = self.assign_replicas(partitions, rf)
            await self._write_topic(name, assignment, configs)
        except KafkaError as e:
            if e.code != ErrorCode.TOPIC_ALREADY_EXISTS:
                log.error("cannot create %s: %s", name, e)
                return None
        ready = _has_leaders(name, partitions)
        await self.broker.wait_for_metadata(ready, 0.0)
        return self.broker.image.topic(name)

    async def delete(self, name: str, wait_s: float = DEFAULT_WAIT_S) -> None:
        """Delete a topic; wait until it is gone from the image (REQUEST_TIMED_OUT)."""
        refused = internal_topic_problem(name, "be deleted")
        if refused is not None:
            raise refused
        topic = self.broker.image.topic(name)
        broker = self.broker
        try:
            await broker.store_call(broker.store.delete_topic, name)
        except StoreError as e:
            raise KafkaError(ErrorCode(e.code), e.message) from None
        topic_id = topic.topic_id if topic is not None else None

        def gone(image: MetadataImage) -> bool:
            now = image.topic(name)
            return now is None or now.topic_id != topic_id

        if wait_s > 0 and not await broker.wait_for_metadata(gone, wait_s):
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, f"Topic {name} is not deleted yet.")

    async def add_partitions(
        self, name: str, assignment: list[tuple[int, ...]], wait_s: float = DEFAULT_WAIT_S
    ) -> None:
        refused = internal_topic_problem(name, "get new partitions")
        if refused is not None:
            raise refused
        broker = self.broker
        topic = broker.image.topic(name)
        total = (len(topic.partitions) if topic is not None else 0) + len(assignment)
        try:
            await broker.store_call(broker.store.add_partitions, name, assignment)
        except StoreError as e:
            raise KafkaError(ErrorCode(e.code), e.message) from None
        ready = _has_leaders(name, total)
        if wait_s > 0 and not await broker.wait_for_metadata(ready, wait_s):
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, f"Partitions of {name} have no leader.")
