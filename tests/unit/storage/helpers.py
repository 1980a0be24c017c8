from __future__ import annotations

from pathlib import Path

from strom.protocol.records import Record, build_batch, iter_batches
from strom.storage.config import LogConfig
from strom.storage.log import FetchDataInfo, PartitionLog

NOW = 1_700_000_000_000


def make_batch(
    count: int = 1, timestamp: int = NOW, *, tag: str = "v", compression: int = 0
) -> bytes:
    return build_batch(
        [(None, f"{tag}{i}".encode(), [], timestamp + i) for i in range(count)],
        compression=compression,
    )


def open_log(
    path: Path,
    config: LogConfig | None = None,
    *,
    clean: bool = True,
    now_ms: int = NOW,
    recovery_point: int = 0,
    log_start_offset: int = 0,
) -> PartitionLog:
    return PartitionLog.open(
        path / "topic-0",
        config or LogConfig(),
        now_ms,
        clean,
        recovery_point=recovery_point,
        log_start_offset=log_start_offset,
    )


def read_records(info: FetchDataInfo) -> list[Record]:
    from strom.protocol.record_decoder import decode_batch

    out: list[Record] = []
    for file_slice in info.slices:
        for _, view in iter_batches(file_slice.read()):
            out.extend(decode_batch(view)[1])
    return out


def read_all(log: PartitionLog, start: int | None = None) -> list[Record]:
    offset = log.log_start_offset if start is None else start
    out: list[Record] = []
    while offset < log.log_end_offset:
        records = read_records(log.read(offset, 1 << 20))
        records = [r for r in records if r.offset >= offset]
        if not records:
            break
        out.extend(records)
        offset = records[-1].offset + 1
    return out
