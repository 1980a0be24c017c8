"""The AlterPartition sender of a simulated broker
(strom.broker.cluster_member.AlterPartitionManager): the pending ISR changes of the
partitions it leads, sent to the controller one request at a time; NOT_CONTROLLER,
STALE_BROKER_EPOCH or no answer within the timeout: sent again; the answer's states
committed or the changes dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from strom.common.types import TopicPartition
from strom.protocol.errors import ErrorCode
from strom.protocol.generated.alter_partition import AlterPartitionRequest as APReq
from strom.protocol.generated.alter_partition import AlterPartitionResponse as APResp
from strom.replication.partition import IsrChange

if TYPE_CHECKING:
    from strom.testing.sim.node import SimNode

RETRY_MS = 100


class AlterPartitionSender:
    def __init__(self, node: SimNode) -> None:
        self.node = node
        self.pending: dict[TopicPartition, IsrChange] = {}
        self.in_flight = False

    def submit(self, change: IsrChange | None) -> None:
        if change is not None:
            self.pending[change.tp] = change
            self.kick()

    def kick(self) -> None:
        if not self.in_flight and self.pending:
            self.in_flight = True
            self.node.later(0, "alter-partition", self._send)

    def _retry(self, batch: dict[TopicPartition, IsrChange]) -> None:
        for tp, change in batch.items():
            self.pending.setdefault(tp, change)

        def again() -> None:
            self.in_flight = False
            self.kick()

        self.node.later(RETRY_MS, "alter-partition-retry", again)

    def _send(self) -> None:
        node = self.node
        batch, self.pending = self.pending, {}
        controller = node.world.nodes.get(node.controller_id)
        if controller is None:
            self._retry(batch)
            return
        req = APReq(
            broker_id=node.id,
            broker_epoch=node.broker_epoch,
            topics=[
                APReq.TopicData(
                    topic_name=node.cfg.topic,
                    topic_id=node.world.topic_id,
                    partitions=[
                        APReq.PartitionData(
                            partition_index=tp.partition,
                            leader_epoch=c.leader_epoch,
                            new_isr=list(c.new_isr),
                            new_isr_with_epochs=[APReq.BrokerState(r, -1) for r in c.new_isr],
                            partition_epoch=c.partition_epoch,
                        )
                        for tp, c in sorted(batch.items())
                    ],
                )
            ],
        )
        state = {"done": False}
        inc = node.incarnation

        def answered(resp: APResp) -> None:
            if state["done"]:
                return
            state["done"] = True
            timer.cancel()
            self._answer(batch, resp)

        def timed_out() -> None:
            if not state["done"]:
                state["done"] = True
                self._retry(batch)

        timer = node.later(node.cfg.request_timeout_ms, "alter-partition-timeout", timed_out)

        def at_controller() -> None:
            controller.runtime.alter_partition(
                req,
                lambda resp: controller.post(
                    node.id, "alter-partition-answer", lambda: answered(resp), inc
                ),
            )

        node.post(controller.id, "alter-partition", at_controller)

    def _answer(self, batch: dict[TopicPartition, IsrChange], resp: APResp) -> None:
        node = self.node
        if resp.error_code != ErrorCode.NONE:
            if resp.error_code in (ErrorCode.NOT_CONTROLLER, ErrorCode.STALE_BROKER_EPOCH):
                self._retry(batch)
                return
            for tp in batch:
                part = node.partitions.get(tp)
                if part is not None:
                    part.on_isr_change_failed()
        else:
            for t in resp.topics:
                for p in t.partitions:
                    tp = TopicPartition(node.cfg.topic, p.partition_index)
                    part = node.partitions.get(tp)
                    if part is None or tp not in batch:
                        continue
                    if p.error_code != ErrorCode.NONE:
                        part.on_isr_change_failed()
                        continue
                    if part.on_isr_change_committed(
                        p.leader_epoch, p.partition_epoch, tuple(p.isr), node.now_ms
                    ):
                        node.on_high_watermark(tp)
        self.in_flight = False
        self.kick()
