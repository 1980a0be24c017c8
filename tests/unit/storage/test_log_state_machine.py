"""A state-machine test of PartitionLog against a list model.

Rules: append, roll, truncate, clean reopen, crash (with a torn tail) and
recovery, retention by size. After every step the log must read back exactly
the model's records, with the model's log start and end offsets.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from strom.storage.config import LogConfig
from strom.storage.log import PartitionLog

from .helpers import NOW, make_batch, read_all

CONFIG = LogConfig(segment_bytes=400, index_interval_bytes=64)


@dataclasses.dataclass
class ModelBatch:
    base_offset: int
    values: list[bytes]

    @property
    def last_offset(self) -> int:
        return self.base_offset + len(self.values) - 1


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="strom-log-"))
        self.dir = self.root / "topic-0"
        self.log = PartitionLog.open(self.dir, CONFIG, NOW, True)
        self.batches: list[ModelBatch] = []
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.counter = 0

    def teardown(self) -> None:
        self.log.close()
        shutil.rmtree(self.root)

    @rule(count=st.integers(min_value=1, max_value=6))
    def append(self, count: int) -> None:
        tag = f"b{self.counter}-"
        self.counter += 1
        info = self.log.append_as_leader(make_batch(count, tag=tag), 0, NOW)
        assert info.first_offset == self.log_end_offset
        self.batches.append(
            ModelBatch(self.log_end_offset, [f"{tag}{i}".encode() for i in range(count)])
        )
        self.log_end_offset += count

    @rule()
    def roll(self) -> None:
        self.log.roll(NOW)

    @precondition(lambda self: self.log_end_offset > self.log_start_offset)
    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.log_start_offset, self.log_end_offset))
        self.log.truncate_to(offset)
        self.batches = [b for b in self.batches if b.last_offset < offset]
        self.log_end_offset = (
            self.batches[-1].last_offset + 1 if self.batches else self.log_start_offset
        )

    @rule()
    def reopen_clean(self) -> None:
        self.log.flush()
        self.log.close()
        self.log = PartitionLog.open(
            self.dir,
            CONFIG,
            NOW,
            True,
            recovery_point=self.log.recovery_point,
            log_start_offset=self.log.log_start_offset,
        )

    @rule(cut=st.integers(min_value=0, max_value=150))
    def crash(self, cut: int) -> None:
        active = self.log.active_segment
        new_size = max(0, active.size - cut)
        survivors = {
            header.base_offset
            for position, header in active.iter_headers()
            if position + header.size_in_bytes <= new_size
        }
        self.log.close()
        os.truncate(active.log_path, new_size)
        self.batches = [
            b
            for b in self.batches
            if b.base_offset < active.base_offset or b.base_offset in survivors
        ]
        self.log = PartitionLog.open(
            self.dir, CONFIG, NOW, False, log_start_offset=self.log_start_offset
        )
        self.log_end_offset = (
            self.batches[-1].last_offset + 1 if self.batches else active.base_offset
        )

    @rule(retention_bytes=st.integers(min_value=0, max_value=1500))
    def retention(self, retention_bytes: int) -> None:
        self.log.config = CONFIG.replace(retention_bytes=retention_bytes)
        self.log.update_high_watermark(self.log.log_end_offset)
        self.log.delete_expired_segments(NOW)
        self.log.config = CONFIG
        self.log_start_offset = self.log.segments[0].base_offset
        self.batches = [b for b in self.batches if b.base_offset >= self.log_start_offset]

    @invariant()
    def matches_model(self) -> None:
        assert self.log.log_end_offset == self.log_end_offset
        assert self.log.log_start_offset == self.log_start_offset
        expected = [
            (batch.base_offset + i, value)
            for batch in self.batches
            for i, value in enumerate(batch.values)
        ]
        assert [(r.offset, r.value) for r in read_all(self.log)] == expected


LogMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestLogMachine = LogMachine.TestCase
