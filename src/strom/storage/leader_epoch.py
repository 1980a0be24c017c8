"""The leader epoch cache of a partition (Kafka's LeaderEpochFileCache).

``leader-epoch-checkpoint`` in the partition directory, in checkpoint format::

    0              version
    2              number of entries
    0 0            epoch start_offset
    3 1500

Each entry says: leader epoch ``epoch`` wrote its first batch at
``start_offset``. Epochs and start offsets both grow strictly. The cache
answers OffsetsForLeaderEpoch (where did an epoch end?) so that followers
truncate to the right place after a leader change.

Crash story: the file is rewritten atomically (tmp + fsync + rename) on every
change. It may lag the log after a crash; the log truncates the cache to its
log end offset and log start offset on open, and recovery re-assigns epochs
from the batches it re-reads.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path
from typing import Final

from strom.storage.checkpoint import CorruptCheckpointError, read_lines, write_lines

LEADER_EPOCH_CHECKPOINT: Final = "leader-epoch-checkpoint"
UNDEFINED_EPOCH: Final = -1
UNDEFINED_EPOCH_OFFSET: Final = -1


class LeaderEpochCache:
    """Ordered (epoch, start_offset) entries backed by a checkpoint file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: list[tuple[int, int]] = []

    @classmethod
    def load(cls, path: Path) -> LeaderEpochCache:
        """Read the file; a corrupt file is discarded (recovery re-assigns epochs)."""
        cache = cls(path)
        try:
            entries = [(int(epoch), int(offset)) for epoch, offset in read_lines(path, 2)]
        except (CorruptCheckpointError, ValueError):
            entries = []
        for epoch, offset in entries:
            cache._assign(epoch, offset)
        return cache

    @property
    def entries(self) -> list[tuple[int, int]]:
        return list(self._entries)

    @property
    def latest_epoch(self) -> int:
        """The latest epoch, or -1 when there is none."""
        return self._entries[-1][0] if self._entries else UNDEFINED_EPOCH

    def _assign(self, epoch: int, start_offset: int) -> bool:
        if epoch < 0 or start_offset < 0:
            raise ValueError(f"invalid epoch entry ({epoch}, {start_offset})")
        if self._entries:
            last_epoch, last_offset = self._entries[-1]
            if epoch == last_epoch and start_offset >= last_offset:
                return False
        # Remove entries that would break monotonicity with the new one.
        while self._entries and (
            self._entries[-1][0] >= epoch or self._entries[-1][1] >= start_offset
        ):
            self._entries.pop()
        self._entries.append((epoch, start_offset))
        return True

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that ``epoch`` starts at ``start_offset`` (no-op if already known)."""
        if self._assign(epoch, start_offset):
            self.flush()

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch whose range holds ``offset`` (-1 when unknown)."""
        i = bisect_right([start for _, start in self._entries], offset)
        return self._entries[i - 1][0] if i else UNDEFINED_EPOCH

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's endOffsetFor: (largest epoch <= requested, its end offset)."""
        if requested_epoch == UNDEFINED_EPOCH or not self._entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if self.latest_epoch == requested_epoch:
            return requested_epoch, log_end_offset
        epochs = [epoch for epoch, _ in self._entries]
        higher = bisect_right(epochs, requested_epoch)
        if higher == len(epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        higher_start = self._entries[higher][1]
        if higher == 0:
            return requested_epoch, higher_start
        return self._entries[higher - 1][0], higher_start

    def truncate_from_end(self, end_offset: int) -> None:
        """Drop entries starting at or after ``end_offset`` (log truncation)."""
        if end_offset < 0 or not self._entries or self._entries[-1][1] < end_offset:
            return
        while self._entries and self._entries[-1][1] >= end_offset:
            self._entries.pop()
        self.flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """Drop entries before ``start_offset``, moving the covering epoch's start up."""
        if not self._entries or self._entries[0][1] >= start_offset:
            return
        last_removed: tuple[int, int] | None = None
        while self._entries and self._entries[0][1] <= start_offset:
            last_removed = self._entries.pop(0)
        if last_removed is not None:
            self._entries.insert(0, (last_removed[0], start_offset))
        self.flush()

    def clear(self) -> None:
        self._entries.clear()
        self.flush()

    def flush(self) -> None:
        write_lines(self.path, self._entries)
