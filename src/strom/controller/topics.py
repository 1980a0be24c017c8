"""Controller events about topics: creation, new partitions, deletion (Kafka's
TopicDeletionManager), ISR changes reported by leaders (AlterPartition) and the legacy
ISR change notifications."""

from __future__ import annotations

import logging
from typing import Any

from strom.common.types import TopicPartition
from strom.controller.brokers import BrokerEvents
from strom.metadata.image import LeaderAndIsr
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.alter_partition import AlterPartitionRequest, AlterPartitionResponse

log = logging.getLogger(__name__)
APReq = AlterPartitionRequest
APResp = AlterPartitionResponse


class TopicEvents(BrokerEvents):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending_deletes: dict[str, set[int]] = {}  # topic -> replicas yet to answer

    # -- creation ----------------------------------------------------------------------
    def on_topic_change(self) -> None:
        """/brokers/topics changed: start new topics, forget topics gone from it."""
        ctx = self.ctx
        names = self.store.topic_names()
        for topic in sorted(set(ctx.topic_ids) - names):
            ctx.remove_topic(topic)
        batch = self.new_batch()
        for topic in sorted(names - set(ctx.topic_ids)):
            tps = self.load_topic(topic)
            existing = self.store.partition_states(tps)
            self.register_topic_states(existing)
            self.init_new_partitions([tp for tp in tps if tp not in existing], batch)
            log.info("new topic %s with %d partition(s)", topic, len(tps))
        self.send(batch)

    def on_partition_modification(self, topic: str) -> None:
        """/brokers/topics/<t> changed: partitions were added (CreatePartitions)."""
        ctx = self.ctx
        if topic not in ctx.topic_ids or topic in ctx.topics_to_delete:
            return
        before = set(ctx.partitions_of(topic))
        after = self.load_topic(topic)
        added = [tp for tp in after if tp not in before and tp not in ctx.states]
        if added:
            batch = self.new_batch()
            self.init_new_partitions(added, batch)
            self.send(batch)

    # -- deletion ------------------------------------------------------------------------
    def on_topic_deletion(self) -> None:
        """/admin/delete_topics changed: mark the topics and stop their replicas."""
        ctx = self.ctx
        wanted = self.store.topics_to_delete()
        unknown = wanted - set(ctx.topic_ids)
        for topic in sorted(unknown):  # nothing to delete: just drop the request
            self.store.delete_topic(topic)
        if not self.config.delete_topic_enable:
            return
        new = (wanted & set(ctx.topic_ids)) - ctx.topics_to_delete
        if new:
            ctx.topics_to_delete |= new
            self.resume_deletions()

    def resume_deletions(self) -> None:
        """Send StopReplica(delete) to every replica of topics being deleted whose
        replicas are all live; the others wait for their brokers to come back."""
        ctx = self.ctx
        batch = self.new_batch()
        for topic in sorted(ctx.topics_to_delete):
            tps = ctx.partitions_of(topic)
            batch.add_deleting(tps)
            replicas = {r for tp in tps for r in ctx.replicas(tp)}
            if not replicas <= set(ctx.live_brokers):
                log.info(
                    "deletion of %s waits for brokers %s",
                    topic,
                    sorted(replicas - set(ctx.live_brokers)),
                )
                continue
            self._pending_deletes[topic] = set(replicas)
            for broker_id in replicas:
                for tp in tps:
                    if broker_id in ctx.replicas(tp):
                        batch.add_stop_replica(
                            broker_id, tp, delete=True, on_response=self._stop_callback(broker_id)
                        )
        self.send(batch)

    def _stop_callback(self, broker_id: int) -> Any:
        def done(response: Any) -> None:
            self.deliver(lambda: self.on_stop_replica_response(broker_id, response))

        return done

    def deliver(self, event: Any) -> None:
        """Hand an event from another thread to the controller (set by the runtime)."""
        event()

    def on_stop_replica_response(self, broker_id: int, response: Any) -> None:
        failed = bool(getattr(response, "error_code", 0)) or any(
            p.error_code for p in getattr(response, "partition_errors", []) or []
        )
        for topic, waiting in list(self._pending_deletes.items()):
            if broker_id not in waiting:
                continue
            if failed:
                log.warning("broker %d could not delete %s; will retry", broker_id, topic)
                continue
            waiting.discard(broker_id)
            if not waiting:
                del self._pending_deletes[topic]
                self._complete_deletion(topic)

    def _complete_deletion(self, topic: str) -> None:
        ctx = self.ctx
        tps = ctx.partitions_of(topic)
        batch = self.new_batch()
        batch.add_deleting(tps)
        self.send(batch)  # brokers forget the partitions (leader -2)
        self.store.delete_topic(topic)
        ctx.remove_topic(topic)
        log.info("deleted topic %s", topic)

    def on_replicas_online(self, new: set[int]) -> None:
        super().on_replicas_online(new)
        if self.ctx.topics_to_delete:
            self.resume_deletions()

    def after_failover(self) -> None:
        super().after_failover()
        if self.ctx.topics_to_delete and self.config.delete_topic_enable:
            self.resume_deletions()

    # -- ISR changes ---------------------------------------------------------------------
    def alter_partition(self, req: APReq, version: int) -> APResp:
        """A leader's ISR change: checked against the broker epoch, the leader epoch and
        the partition epoch, then written; the answer carries the new state."""
        ctx = self.ctx
        if req.broker_epoch != -1 and req.broker_epoch != ctx.broker_epoch(req.broker_id):
            return APResp(error_code=ErrorCode.STALE_BROKER_EPOCH)
        out = []
        batch = self.new_batch()
        for topic in req.topics:
            name = topic.topic_name if version < 2 else self._topic_by_id(topic.topic_id)
            parts = [self._alter_one(name, req.broker_id, p, batch) for p in topic.partitions]
            out.append(
                APResp.TopicData(topic_name=name or "", topic_id=topic.topic_id, partitions=parts)
            )
        self.send(batch)
        self.on_isr_changed(list(batch.update_metadata))
        return APResp(error_code=0, topics=out)

    def _topic_by_id(self, topic_id: bytes) -> str | None:
        return next((t for t, i in self.ctx.topic_ids.items() if i == topic_id), None)

    def _alter_one(
        self, topic: str | None, broker_id: int, p: APReq.PartitionData, batch: Any
    ) -> APResp.PartitionData:
        ctx = self.ctx
        out = APResp.PartitionData(partition_index=p.partition_index, leader_id=-1)
        tp = TopicPartition(topic or "", p.partition_index)
        cur = ctx.states.get(tp)
        if topic is None or cur is None or topic in ctx.topics_to_delete:
            out.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            return out
        new_isr = tuple(p.new_isr or [b.broker_id for b in p.new_isr_with_epochs])
        if cur.leader != broker_id:
            out.error_code = ErrorCode.NOT_LEADER_OR_FOLLOWER
        elif p.leader_epoch != cur.leader_epoch:
            out.error_code = ErrorCode.FENCED_LEADER_EPOCH
        elif new_isr == cur.isr and p.partition_epoch <= cur.zk_version:
            pass  # already so (a retry whose first answer was lost): the current state
        elif p.partition_epoch != cur.zk_version:
            out.error_code = ErrorCode.INVALID_UPDATE_VERSION
        elif any(r not in ctx.replicas(tp) or not ctx.is_live(r) for r in new_isr) or any(
            r in ctx.shutting_down and r not in cur.isr for r in new_isr
        ):
            out.error_code = ErrorCode.INELIGIBLE_REPLICA
        elif new_isr != cur.isr:
            wanted = LeaderAndIsr(cur.leader, cur.leader_epoch, new_isr, ctx.epoch, cur.zk_version)
            result = self.store.update_partition_states({tp: wanted})[tp]
            if result is None:
                ctx.states.update(self.store.partition_states([tp]))
                out.error_code = ErrorCode.INVALID_UPDATE_VERSION
            else:
                ctx.states[tp] = result
                batch.add_update_metadata([tp])
                log.info("ISR of %s is now %s", tp, list(new_isr))
        state = ctx.states[tp]
        if out.error_code == ErrorCode.NONE:
            out.leader_id, out.leader_epoch = state.leader, state.leader_epoch
            out.isr = list(state.isr)
            out.partition_epoch = state.zk_version
        return out

    def on_isr_changed(self, tps: list[TopicPartition]) -> None:
        """Hook: reassignments waiting for replicas to join the ISR go on."""

    def on_isr_change_notification(self) -> None:
        """Legacy /isr_change_notification: re-read the states, tell every broker."""
        notes = self.store.isr_change_notifications()
        tps = {tp for _, parts in notes for tp in parts if tp in self.ctx.assignments}
        if tps:
            self.ctx.states.update(self.store.partition_states(tps))
            batch = self.new_batch()
            batch.add_update_metadata(tps)
            self.send(batch)
            self.on_isr_changed(sorted(tps))
        self.store.delete_isr_change_notifications(name for name, _ in notes)
