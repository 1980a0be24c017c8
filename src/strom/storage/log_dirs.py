"""A broker's partition logs in their log directories: loading at startup, placing,
creating, deleting and moving logs, the offset checkpoints, and the failure of a
directory. The base of :class:`strom.storage.log_manager.LogManager`, which adds the
periodic work and the shutdown.

Each log directory holds::

    <topic>-<partition>/                 one PartitionLog per partition
    <topic>-<partition>.<uuid>-delete/   a deleted partition, removed file.delete.delay.ms later
    .kafka_cleanshutdown                 present only after a clean shutdown
    recovery-point-offset-checkpoint     "topic partition offset" lines
    log-start-offset-checkpoint          "topic partition offset" lines
    replication-offset-checkpoint        high watermarks, same format

Crash story: at startup the clean-shutdown marker decides whether logs are
recovered from their checkpointed recovery points; the marker is deleted once
every log is loaded and written again only by :meth:`LogManager.shutdown`,
after all logs are flushed and checkpoints written. Directories renamed to
``-delete`` are removed at startup if a crash interrupted their deletion.

Failure story: every OSError on a log directory goes through
:meth:`LogDirs.handle_dir_failure`: the directory goes offline, its logs
refuse all calls, and callers get ``KafkaError(KAFKA_STORAGE_ERROR)`` for
those partitions. The broker keeps serving the other directories.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from strom.common.types import TopicPartition, random_uuid
from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.checkpoint import (
    LOG_START_OFFSET_CHECKPOINT,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
    CorruptCheckpointError,
    read_offsets,
    write_offsets,
)
from strom.storage.config import LogConfig
from strom.storage.deletion import DeletionQueue
from strom.storage.jobs import StorageWorkers

# The log's code (segments, indexes, records, producer state: most of what a broker
# imports) is imported with the first log a broker opens, not at its start (issue 15).
if TYPE_CHECKING:
    from strom.storage.cleanable import CleanerCheckpoint
    from strom.storage.log import PartitionLog
    from strom.storage.segment import LogSegment

CLEAN_SHUTDOWN_FILE: Final = ".kafka_cleanshutdown"
# Each checkpoint file and the PartitionLog attribute it records.
_CHECKPOINT_FIELDS: Final = {
    RECOVERY_POINT_CHECKPOINT: "recovery_point",
    LOG_START_OFFSET_CHECKPOINT: "log_start_offset",
    REPLICATION_OFFSET_CHECKPOINT: "high_watermark",
}
DELETE_DIR_SUFFIX: Final = "-delete"

logger = logging.getLogger("strom.storage.log_manager")  # the LogManager's logger


def _read_offsets_or_empty(path: Path) -> dict[TopicPartition, int]:
    try:
        return read_offsets(path)
    except CorruptCheckpointError:
        logger.warning("ignoring corrupt checkpoint %s", path)
        return {}


class LogDirs:
    """Loads, places, creates, deletes and moves the partition logs; takes failed
    log directories offline."""

    def __init__(
        self,
        log_dirs: Sequence[Path],
        default_config: LogConfig,
        now_ms: int,
        *,
        topic_config: Callable[[str], LogConfig] | None = None,
        producer_id_expiration_ms: int = 86_400_000,
    ) -> None:
        self.log_dirs = [Path(log_dir) for log_dir in log_dirs]
        self.default_config = default_config
        self._topic_config = topic_config
        self.producer_id_expiration_ms = producer_id_expiration_ms
        # told when a directory goes offline (the broker reacts; may be any thread)
        self.on_dir_offline: Callable[[Path], None] | None = None
        self._logs: dict[TopicPartition, PartitionLog] = {}
        self._dir_of: dict[TopicPartition, Path] = {}
        self._cleaner_state: dict[TopicPartition, CleanerCheckpoint] = {}
        self._cleaning: set[TopicPartition] = set()  # a cleaning job is in flight
        self._uncleanable: set[TopicPartition] = set()  # a cleaning failed (as Kafka)
        self._cleaner_trash: list[LogSegment] = []  # cleaned copies not swapped in
        self.deletions = DeletionQueue()
        self.workers = StorageWorkers()
        self._stop_cleaning = threading.Event()  # shutdown: running cleanings stop early
        self.offline_dirs: set[Path] = set()
        for log_dir in self.log_dirs:
            self._load_dir(log_dir, now_ms)

    def config_for(self, topic: str) -> LogConfig:
        return self._topic_config(topic) if self._topic_config else self.default_config

    # -- startup ---------------------------------------------------------------

    def _load_dir(self, log_dir: Path, now_ms: int) -> None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            marker = log_dir / CLEAN_SHUTDOWN_FILE
            clean_shutdown = marker.exists()
            recovery_points = _read_offsets_or_empty(log_dir / RECOVERY_POINT_CHECKPOINT)
            log_start_offsets = _read_offsets_or_empty(log_dir / LOG_START_OFFSET_CHECKPOINT)
            high_watermarks = _read_offsets_or_empty(log_dir / REPLICATION_OFFSET_CHECKPOINT)
            for child in sorted(log_dir.iterdir()):
                if not child.is_dir():
                    continue
                from strom.storage.log import PartitionLog, parse_topic_partition_dir

                if child.name.endswith(DELETE_DIR_SUFFIX):
                    import shutil

                    shutil.rmtree(child)
                    continue
                parsed = parse_topic_partition_dir(child.name)
                if parsed is None:
                    continue
                tp = TopicPartition(*parsed)
                if tp in self._logs:
                    logger.error("duplicate log directory for %s: %s", tp, child)
                    continue
                self._register(
                    tp,
                    log_dir,
                    PartitionLog.open(
                        child,
                        self.config_for(tp.topic),
                        now_ms,
                        clean_shutdown,
                        recovery_point=recovery_points.get(tp, 0),
                        log_start_offset=log_start_offsets.get(tp, 0),
                        high_watermark=high_watermarks.get(tp),
                        on_dir_failure=self.handle_dir_failure,
                        deletions=self.deletions,
                    ),
                )
            marker.unlink(missing_ok=True)
        except OSError as exc:
            self.handle_dir_failure(log_dir, exc)

    def _register(self, tp: TopicPartition, log_dir: Path, log: PartitionLog) -> None:
        log.producer_state.expiration_ms = self.producer_id_expiration_ms
        self._logs[tp] = log
        self._dir_of[tp] = log_dir

    # -- failures --------------------------------------------------------------

    def handle_dir_failure(self, log_dir: Path, exc: OSError) -> None:
        """The single OSError handler: take ``log_dir`` and its logs offline."""
        if log_dir in self.offline_dirs:
            return
        logger.error("log directory %s is offline: %s", log_dir, exc)
        self.offline_dirs.add(log_dir)
        for tp, tp_dir in self._dir_of.items():
            if tp_dir == log_dir:
                self._logs[tp].mark_offline()
        if self.on_dir_offline is not None:
            self.on_dir_offline(log_dir)

    def _storage_error(self, tp: TopicPartition) -> KafkaError:
        return KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"the log directory of {tp} is offline")

    def _online_dirs(self) -> list[Path]:
        return [log_dir for log_dir in self.log_dirs if log_dir not in self.offline_dirs]

    # -- partitions ------------------------------------------------------------

    def dir_of(self, tp: TopicPartition) -> Path | None:
        """The log directory holding ``tp``, None if it has no log here."""
        return self._dir_of.get(tp)

    def get_log(self, tp: TopicPartition) -> PartitionLog | None:
        """The partition's log, None if absent; KAFKA_STORAGE_ERROR if offline."""
        log = self._logs.get(tp)
        if log is not None and (
            log.offline or (self.offline_dirs and self._dir_of[tp] in self.offline_dirs)
        ):
            raise self._storage_error(tp)
        return log

    def create_log(
        self, tp: TopicPartition, now_ms: int, config: LogConfig | None = None
    ) -> PartitionLog:
        """Get or create the log, in the online directory with the fewest logs."""
        existing = self.get_log(tp)
        if existing is not None:
            return existing
        online = self._online_dirs()
        if not online:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "no log directory is online")
        counts = {log_dir: 0 for log_dir in online}
        for tp_dir in self._dir_of.values():
            if tp_dir in counts:
                counts[tp_dir] += 1
        log_dir = min(online, key=lambda candidate: counts[candidate])
        from strom.storage.log import PartitionLog

        try:
            log = PartitionLog.open(
                log_dir / f"{tp.topic}-{tp.partition}",
                config or self.config_for(tp.topic),
                now_ms,
                clean_shutdown=True,
                on_dir_failure=self.handle_dir_failure,
                deletions=self.deletions,
            )
        except OSError as exc:
            self.handle_dir_failure(log_dir, exc)
            raise self._storage_error(tp) from exc
        self._register(tp, log_dir, log)
        return log

    def delete_log(self, tp: TopicPartition, now_ms: int | None = None) -> None:
        """Forget the partition and rename its directory to ``-delete``; a storage
        thread removes it file.delete.delay.ms later (the broker default, as Kafka's
        LogManager.asyncDelete), so reads in flight finish."""
        log = self._logs.pop(tp, None)
        log_dir = self._dir_of.pop(tp, None)
        self._cleaner_state.pop(tp, None)
        self._uncleanable.discard(tp)
        if log is None or log_dir is None or log.offline or log_dir in self.offline_dirs:
            return
        try:
            log.detach()
            doomed = log_dir / f"{tp.topic}-{tp.partition}.{random_uuid().hex()}{DELETE_DIR_SUFFIX}"
            log.dir.rename(doomed)
            self.deletions.schedule(doomed, self.default_config.file_delete_delay_ms, now_ms)
        except OSError as exc:
            self.handle_dir_failure(log_dir, exc)
            raise self._storage_error(tp) from exc

    def move_log(self, tp: TopicPartition, dest: Path, now_ms: int) -> PartitionLog:
        """AlterReplicaLogDirs: move ``tp``'s log into log directory ``dest`` (one of
        ``log_dirs``): flush and snapshot, rename the partition directory, reopen it
        there (a clean open at the log end). Reads in flight keep their open files.
        Returns the log to use from now on; KAFKA_STORAGE_ERROR when a directory is
        offline or the move fails."""
        log = self.get_log(tp)
        if log is None:
            raise KafkaError(ErrorCode.REPLICA_NOT_AVAILABLE, f"{tp} has no log here")
        source = self._dir_of[tp]
        if dest == source:
            return log
        if dest in self.offline_dirs:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"Log directory {dest} is offline")
        try:
            log.active_segment.trim()  # preallocate: reopened, the file size is the data
        except OSError as exc:
            self.handle_dir_failure(source, exc)
            raise self._storage_error(tp) from exc
        log.flush(now_ms)
        log.producer_state.write_snapshot(log.log_end_offset)
        start, hw, end = log.log_start_offset, log.high_watermark, log.log_end_offset
        log.detach()
        self._logs.pop(tp)
        self._dir_of.pop(tp)
        self._cleaner_state.pop(tp, None)
        target = dest / log.dir.name
        import shutil

        from strom.storage.log import PartitionLog

        try:
            if target.exists():
                shutil.rmtree(target)  # a leftover of an interrupted move
            shutil.move(str(log.dir), str(target))
            moved = PartitionLog.open(
                target,
                log.config,
                now_ms,
                clean_shutdown=True,
                recovery_point=end,
                log_start_offset=start,
                high_watermark=hw,
                on_dir_failure=self.handle_dir_failure,
                deletions=self.deletions,
            )
        except OSError as exc:
            self.handle_dir_failure(dest, exc)
            raise self._storage_error(tp) from exc
        self._register(tp, dest, moved)
        self.write_checkpoints()
        return moved

    def all_logs(self) -> dict[TopicPartition, PartitionLog]:
        """The online logs."""
        return {tp: log for tp, log in self._logs.items() if not log.offline}

    def offline_partitions(self) -> set[TopicPartition]:
        return {tp for tp, log in self._logs.items() if log.offline}

    # -- checkpoints -----------------------------------------------------------

    def checkpoint_offsets(self, name: str) -> dict[Path, dict[TopicPartition, int]]:
        """The offsets one checkpoint file holds, per online log directory (a snapshot
        that :meth:`write_checkpoint` may write from another thread): ``name`` is
        RECOVERY_POINT_CHECKPOINT, LOG_START_OFFSET_CHECKPOINT or
        REPLICATION_OFFSET_CHECKPOINT."""
        attr = _CHECKPOINT_FIELDS[name]
        out: dict[Path, dict[TopicPartition, int]] = {d: {} for d in self._online_dirs()}
        for tp, log in self._logs.items():
            log_dir = self._dir_of[tp]
            if log_dir in out and not log.offline:
                out[log_dir][tp] = getattr(log, attr)
        return out

    def write_checkpoint(self, name: str, offsets: dict[Path, dict[TopicPartition, int]]) -> None:
        """Write one checkpoint file in each log directory (blocking: fsync)."""
        for log_dir, entries in offsets.items():
            if log_dir in self.offline_dirs:
                continue
            try:
                write_offsets(log_dir / name, entries)
            except OSError as exc:
                self.handle_dir_failure(log_dir, exc)

    def write_checkpoints(self) -> None:
        """Write the recovery point, log start offset and high watermark checkpoints."""
        for name in _CHECKPOINT_FIELDS:
            self.write_checkpoint(name, self.checkpoint_offsets(name))
