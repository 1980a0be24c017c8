"""The IO edge of the transaction coordinator: ``__transaction_state``, markers, timers.

``TxnRuntime`` owns a sans-IO :class:`TransactionCoordinator`. It creates the
internal topic on first use, loads a partition of it by replaying its records
when this broker becomes the partition's leader (and unloads it when it stops
being one), appends the records each request produces (acks=all: a state
change is answered once committed), writes the transaction markers (control
batches) to every partition of a prepared transaction (txn_markers.py), and
runs the periodic work: aborting timed-out transactions, retrying markers that
could not be written, and expiring idle transactional ids.

Crash story: the Prepare* record is appended before any marker is written,
and Complete* only after all of them. A broker killed in between finds the
Prepare* state on load and writes the markers again (markers are
idempotent). An Ongoing transaction found on load is aborted when its
transaction.timeout.ms has passed since it started.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from strom.broker.txn_markers import TxnMarkers
from strom.common.names import TXN_TOPIC
from strom.common.types import TopicPartition
from strom.protocol.api_versions import ApiKey
from strom.protocol.errors import DecodeError, ErrorCode, KafkaError
from strom.protocol.frame import RequestHeader

if TYPE_CHECKING:
    from strom.broker.broker import Broker
    from strom.coordinator.txn.coordinator import MarkerJob, TransactionCoordinator, TxnResult
    from strom.protocol.generated.init_producer_id import (
        InitProducerIdRequest,
        InitProducerIdResponse,
    )

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20

# Kafka's mapping of append errors on the transaction log (TransactionStateManager).
_APPEND_ERRORS = {
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.REQUEST_TIMED_OUT: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    ErrorCode.NOT_LEADER_OR_FOLLOWER: ErrorCode.NOT_COORDINATOR,
    ErrorCode.KAFKA_STORAGE_ERROR: ErrorCode.NOT_COORDINATOR,
    ErrorCode.MESSAGE_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
    ErrorCode.RECORD_LIST_TOO_LARGE: ErrorCode.UNKNOWN_SERVER_ERROR,
}

# First versions that may return PRODUCER_FENCED (KIP-588); older ones get INVALID_PRODUCER_EPOCH.
FENCED_SINCE = {
    ApiKey.INIT_PRODUCER_ID: 4,
    ApiKey.ADD_PARTITIONS_TO_TXN: 2,
    ApiKey.ADD_OFFSETS_TO_TXN: 2,
    ApiKey.END_TXN: 2,
    ApiKey.TXN_OFFSET_COMMIT: 3,
}


def fenced_for_version(code: ErrorCode, header: RequestHeader) -> ErrorCode:
    if code == ErrorCode.PRODUCER_FENCED and header.api_version < FENCED_SINCE.get(
        ApiKey(header.api_key), 0
    ):
        return ErrorCode.INVALID_PRODUCER_EPOCH
    return code


class TxnRuntime(TxnMarkers):
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        cfg = broker.config
        self._coordinator: TransactionCoordinator | None = None  # made on first use
        self.verification_enabled = cfg.get_bool("transaction.partition.verification.enable")
        self.pending_markers: dict[str, MarkerJob] = {}
        self.commit_timeout_s = cfg.get_int("offsets.commit.timeout.ms") / 1000

    @property
    def coordinator(self) -> TransactionCoordinator:
        """The sans-IO coordinator, made (and its code imported) on first use: by a
        producer id, a transactional id or a partition of ``__transaction_state``; a
        broker that none of them reaches never loads it."""
        if self._coordinator is None:
            from strom.coordinator.txn.coordinator import TransactionCoordinator, TxnConfig

            cfg = self.broker.config
            self._coordinator = TransactionCoordinator(
                TxnConfig(
                    num_partitions=cfg.get_int("transaction.state.log.num.partitions"),
                    max_timeout_ms=cfg.get_int("transaction.max.timeout.ms"),
                    id_expiration_ms=cfg.get_int("transactional.id.expiration.ms"),
                ),
                self.broker.producer_ids.generate,
            )
        return self._coordinator

    def startup(self) -> None:
        """Nothing to do: partitions load when this broker becomes their leader."""

    # -- the internal topic --------------------------------------------------------
    async def find_coordinator(self, transactional_id: str) -> tuple[ErrorCode, int]:
        """FindCoordinator(key_type=transaction): (NONE, leader of the id's partition of
        ``__transaction_state``), or (COORDINATOR_NOT_AVAILABLE, -1)."""
        if not transactional_id:
            return ErrorCode.INVALID_REQUEST, -1
        topic = await self.broker.topics.ensure_internal(TXN_TOPIC)
        if topic is None:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, -1
        self._set_partitions(len(topic.partitions))
        info = topic.partition(self.coordinator.partition_for(transactional_id))
        if info is None or info.leader < 0:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE, -1
        return ErrorCode.NONE, info.leader

    def _set_partitions(self, count: int) -> None:
        coordinator = self.coordinator
        if coordinator.config.num_partitions != count:
            from dataclasses import replace  # here: not imported at start (issue 15)

            coordinator.config = replace(coordinator.config, num_partitions=count)

    def on_leadership(self, tp: TopicPartition, is_leader: bool, leader_epoch: int) -> None:
        """Load a partition of ``__transaction_state`` when this broker becomes its
        leader (the coordinator epoch is the leader epoch); unload it otherwise."""
        if tp.topic != TXN_TOPIC:
            return
        topic = self.broker.topic(TXN_TOPIC)
        if topic is not None:
            self._set_partitions(len(topic.partitions))
        self.coordinator.unload(tp.partition)
        for txn_id in [t for t, job in self.pending_markers.items()
                       if self.coordinator.partition_for(t) == tp.partition]:  # fmt: skip
            del self.pending_markers[txn_id]
        if not is_leader:
            return
        self.coordinator.begin_load(tp.partition)
        count = self._replay_partition(tp)
        jobs = self.coordinator.complete_load(tp.partition, max(leader_epoch, 0))
        if count:
            log.info("loaded %d record(s) of %s, %d to complete", count, tp, len(jobs))
        for job in jobs:
            self.pending_markers[job.transactional_id] = job

    def _replay_partition(self, tp: TopicPartition) -> int:
        """Replay the whole log, up to its log end offset and not its high watermark
        (Kafka's TransactionStateManager reads with FetchIsolation.LOG_END): a
        follower just made leader may hold records the old leader had committed
        and answered while its own high watermark, learnt from the next fetch
        answer, still lags behind them. Its log is now the partition's truth; a
        load stopped at the high watermark would forget an Ongoing transaction's
        partitions, or a Prepare* decision, the client was already told of."""
        from strom.protocol.records import iter_batches  # with the first load, not at start

        plog = self.broker.replicas.get_partition(tp).log
        offset, count = plog.log_start_offset, 0
        while offset < plog.log_end_offset:
            data = plog.read(offset, _READ_CHUNK)
            if not data.slices:
                break
            raw = b"".join(s.read() for s in data.slices)
            progressed = False
            for header, view in iter_batches(raw):
                if header.last_offset >= offset and not header.is_control:
                    count += self._replay_batch(tp, view, offset, plog.config.max_message_bytes)
                offset, progressed = max(offset, header.next_offset), True
            if not progressed:
                break
        return count

    def _replay_batch(self, tp: TopicPartition, view: memoryview, offset: int, limit: int) -> int:
        """Replay the records from ``offset``, streamed: a key or value larger than the
        topic's max.message.bytes (``limit``) was never written by the coordinator and
        is skipped without being read into memory."""
        from strom.protocol.record_stream import stream_records

        count = 0
        for record in stream_records(view, max_key_bytes=limit, max_value_bytes=limit):
            if record.offset < offset:
                continue
            if record.partial:
                log.warning("skipping an oversized record of %s at %d", tp, record.offset)
            else:
                count += self._replay_one(tp, record.key, record.value)
        return count

    def _replay_one(self, tp: TopicPartition, key: bytes | None, value: bytes | None) -> int:
        from strom.coordinator.txn.log_records import decode_record  # with the coordinator

        try:
            self.coordinator.replay(decode_record(key, value))
        except DecodeError as e:
            log.warning("skipping an unreadable record of %s: %s", tp, e)
            return 0
        return 1

    # -- InitProducerId -----------------------------------------------------------------
    async def init_producer_id(
        self, header: RequestHeader, req: InitProducerIdRequest
    ) -> InitProducerIdResponse:
        # the codec is imported with the API's first request, as its handler is
        from strom.protocol.generated.init_producer_id import InitProducerIdResponse

        txn_id = req.transactional_id or ""
        await self.broker.producer_ids.ensure_available(self.broker)
        expected: tuple[int, int] | None = None
        if req.producer_id >= 0 or req.producer_epoch >= 0:
            if req.producer_id < 0 or req.producer_epoch < 0:
                return InitProducerIdResponse(
                    error_code=ErrorCode.INVALID_REQUEST, producer_epoch=-1
                )
            expected = (req.producer_id, req.producer_epoch)
        result = self.coordinator.init_producer_id(
            txn_id, req.transaction_timeout_ms, expected, self.broker.now_ms()
        )
        error = fenced_for_version(await self.execute(result), header)
        if error:
            return InitProducerIdResponse(error_code=error, producer_id=-1, producer_epoch=-1)
        return InitProducerIdResponse(
            producer_id=result.producer_id, producer_epoch=result.producer_epoch
        )

    # -- appends ----------------------------------------------------------------------
    async def _append_records(self, result: TxnResult) -> ErrorCode:
        from strom.coordinator.txn.log_records import encode_record  # with the coordinator
        from strom.protocol.records import build_batch

        now = self.broker.now_ms()
        records = []
        for record in result.records:
            key, value = encode_record(record)
            records.append((key, value, (), now))
        tp = TopicPartition(TXN_TOPIC, result.partition)
        try:
            await self.broker.replicas.append_committed(
                tp, build_batch(records), now, self.commit_timeout_s
            )
        except KafkaError as e:
            log.warning("appending to %s failed: %s", tp, e)
            return _APPEND_ERRORS.get(ErrorCode(e.code), ErrorCode(e.code))
        return ErrorCode.NONE

    async def execute(self, result: TxnResult) -> ErrorCode:
        """Append the records of ``result``, apply them, and send any markers now due."""
        if result.records:
            error = await self._append_records(result)
            if error:
                self.coordinator.write_failed(result)
                return error
            for record in result.records:
                self.coordinator.replay(record)
            job = self.coordinator.marker_job(result.transactional_id)
            if job is not None:
                await self.send_markers(job)
        return result.error

    # -- periodic work ----------------------------------------------------------------
    async def abort_timed_out_transactions(self) -> int:
        if self._coordinator is None:
            return 0  # no transaction yet
        now = self.broker.now_ms()
        aborted = 0
        for txn_id in self.coordinator.timed_out(now):
            result = self.coordinator.abort_timed_out(txn_id, now)
            if result.records and not await self.execute(result):
                aborted += 1
                log.info("aborted transaction of %s after its timeout", txn_id)
        await self.retry_markers()
        return aborted

    async def expire_transactional_ids(self) -> int:
        if self._coordinator is None:
            return 0  # no transactional id yet
        expired = 0
        for result in self.coordinator.expire_transactional_ids(self.broker.now_ms()):
            if not await self.execute(result):
                expired += len(result.records)
        return expired
