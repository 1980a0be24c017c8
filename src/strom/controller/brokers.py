"""Controller events about brokers: failover, brokers joining and leaving, controlled
shutdown, and the automatic preferred-leader rebalance (Kafka's onControllerFailover,
onBrokerStartup, onBrokerFailure, ControlledShutdown, checkAndTriggerAutoLeaderRebalance)."""

from __future__ import annotations

import logging

from strom.common.types import TopicPartition
from strom.controller.controller import ControllerCore
from strom.controller.election import preferred_replica_leader
from strom.metadata.image import BrokerInfo
from strom.protocol.errors import ErrorCode

log = logging.getLogger(__name__)


class BrokerEvents(ControllerCore):
    def on_failover(self) -> None:
        """Just elected: read the whole cluster, tell every broker, fix what is offline."""
        ctx = self.ctx
        ctx.live_brokers = self.store.live_brokers()
        for info in ctx.live_brokers.values():
            self.channel.add_broker(info)
        for topic in sorted(self.store.topic_names()):
            self.load_topic(topic)
        ctx.states = self.store.partition_states(list(ctx.assignments))
        ctx.topics_to_delete = self.store.topics_to_delete() & set(ctx.topic_ids)
        log.info(
            "controller %d (epoch %d) loaded %d broker(s), %d topic(s), %d partition(s)",
            self.broker_id,
            ctx.epoch,
            len(ctx.live_brokers),
            len(ctx.topic_ids),
            len(ctx.assignments),
        )
        batch = self.new_batch()
        batch.add_full_metadata(ctx.live_brokers)
        new = [tp for tp in ctx.assignments if tp not in ctx.states]
        self.init_new_partitions(new, batch)
        self.elect_offline([tp for tp in ctx.states if not ctx.is_online(tp)], batch)
        # Replicas on brokers that are gone leave the ISRs (Kafka's OfflineReplica).
        dead = {r for s in ctx.states.values() for r in s.isr if not ctx.is_live(r)}
        for b in sorted(dead):
            follows = [tp for tp, s in ctx.states.items() if b in s.isr and s.leader != b]
            self.remove_replica_from_isr(b, follows, batch)
        for broker_id in ctx.live_brokers:
            for tp in ctx.partitions_on(broker_id):
                if tp in ctx.states:
                    batch.leader_and_isr.setdefault(broker_id, {}).setdefault(tp, False)
        self.send(batch)
        self.after_failover()

    def after_failover(self) -> None:
        """Hook for the features that resume work (deletions, reassignments)."""

    def on_broker_change(self) -> None:
        """/brokers/ids changed: brokers that left lose their leaderships and ISR places;
        brokers that came (or came back with a new epoch) get their partitions."""
        ctx = self.ctx
        now = self.store.live_brokers()
        old = ctx.live_brokers
        bounced = {b for b in now if b in old and now[b].epoch != old[b].epoch}
        dead = (set(old) - set(now)) | bounced
        new = (set(now) - set(old)) | bounced
        if dead:
            log.info("brokers gone: %s", sorted(dead))
            for b in dead:
                ctx.live_brokers.pop(b, None)
                ctx.shutting_down.discard(b)
                self.channel.remove_broker(b)
            self.on_brokers_failed(dead)
        if new:
            log.info("brokers registered: %s", sorted(new))
            for b in sorted(new):
                ctx.live_brokers[b] = now[b]
                self.channel.add_broker(now[b])
            self.on_brokers_started(new)
        for b in set(now) - new:  # endpoints or rack may have changed
            ctx.live_brokers[b] = now[b]

    def on_brokers_failed(self, dead: set[int]) -> None:
        ctx = self.ctx
        batch = self.new_batch()
        led = [tp for tp, s in ctx.states.items() if s.leader in dead]
        self.elect_offline(led, batch)
        for b in sorted(dead):
            follows = [tp for tp, s in ctx.states.items() if b in s.isr and s.leader != b]
            self.remove_replica_from_isr(b, follows, batch)
        batch.add_update_metadata(tp for tp in ctx.assignments if set(ctx.replicas(tp)) & dead)
        self.send(batch)
        self.on_replicas_offline(dead)

    def on_replicas_offline(self, dead: set[int]) -> None:
        """Hook: topic deletion pauses for topics with a replica on ``dead``."""

    def on_brokers_started(self, new: set[int]) -> None:
        ctx = self.ctx
        batch = self.new_batch()
        batch.add_full_metadata(ctx.live_brokers)
        uninitialised = [
            tp for tp in ctx.assignments if tp not in ctx.states and set(ctx.replicas(tp)) & new
        ]
        self.init_new_partitions(uninitialised, batch)
        offline = [tp for tp in ctx.states if not ctx.is_online(tp)]
        self.elect_offline(offline, batch)
        for b in new:
            for tp in ctx.partitions_on(b):
                if tp in ctx.states:
                    batch.leader_and_isr.setdefault(b, {}).setdefault(tp, False)
        self.send(batch)
        self.on_replicas_online(new)

    def on_replicas_online(self, new: set[int]) -> None:
        """Hook: deletions and reassignments waiting for these brokers continue."""

    # -- controlled shutdown ----------------------------------------------------------
    def controlled_shutdown(
        self, broker_id: int, broker_epoch: int
    ) -> tuple[ErrorCode, list[TopicPartition]]:
        """Move the leaderships of a broker about to stop; (error, partitions it still
        leads that have other replicas: the broker asks again later)."""
        ctx = self.ctx
        if not ctx.is_live(broker_id):
            return ErrorCode.BROKER_NOT_AVAILABLE, []
        if broker_epoch != -1 and broker_epoch != ctx.broker_epoch(broker_id):
            return ErrorCode.STALE_BROKER_EPOCH, []
        ctx.shutting_down.add(broker_id)
        log.info("controlled shutdown of broker %d", broker_id)
        batch = self.new_batch()
        movable = [tp for tp in ctx.partitions_led_by(broker_id) if len(ctx.replicas(tp)) > 1]
        self.shutdown_election(movable, batch)
        follows = [
            tp
            for tp, s in ctx.states.items()
            if broker_id in s.isr and s.leader != broker_id and len(ctx.replicas(tp)) > 1
        ]
        self.remove_replica_from_isr(broker_id, follows, batch)
        for tp in follows:
            batch.add_stop_replica(broker_id, tp, delete=False)
        self.send(batch)
        # What the broker should wait for: leaderships another live replica could take
        # once it is in sync (none where every other replica is down).
        remaining = [
            tp
            for tp in ctx.partitions_led_by(broker_id)
            if any(r != broker_id and ctx.is_live(r) for r in ctx.replicas(tp))
        ]
        return ErrorCode.NONE, remaining

    # -- automatic leader rebalance ----------------------------------------------------------
    def on_auto_rebalance(self) -> int:
        """Preferred-leader election on brokers whose share of partitions they should
        lead but do not exceeds leader.imbalance.per.broker.percentage; how many moved."""
        ctx = self.ctx
        if not self.config.auto_leader_rebalance:
            return 0
        moved = 0
        live = ctx.live_not_shutting_down()
        for broker_id in sorted(live):
            preferred = [
                tp
                for tp in ctx.states
                if ctx.replicas(tp)[:1] == (broker_id,) and tp.topic not in ctx.topics_to_delete
            ]
            if not preferred:
                continue
            imbalanced = [tp for tp in preferred if ctx.leader(tp) != broker_id]
            ratio = 100 * len(imbalanced) / len(preferred)
            if ratio <= self.config.leader_imbalance_percentage:
                continue
            eligible = [
                tp
                for tp in imbalanced
                if preferred_replica_leader(ctx.replicas(tp), ctx.states[tp].isr, live)
                and not ctx.assignments[tp].is_reassigning
            ]
            batch = self.new_batch()
            moved += len(self.preferred_election(eligible, batch))
            self.send(batch)
        return moved

    def broker_info(self, broker_id: int) -> BrokerInfo | None:
        return self.ctx.live_brokers.get(broker_id)
