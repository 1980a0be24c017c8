from __future__ import annotations

from pathlib import Path

import pytest

from strom.protocol.errors import ErrorCode, KafkaError
from strom.storage.checkpoint import CorruptCheckpointError, read_lines, write_lines
from strom.storage.config import LogConfig
from strom.storage.index import CorruptIndexError, OffsetIndex, TimeIndex
from strom.storage.leader_epoch import LeaderEpochCache
from strom.storage.segment import LogSegment

from .helpers import NOW, make_batch


def test_offset_index_lookup_truncate_reload(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000100.index"
    index = OffsetIndex.open(path, 100, 8 * 4)
    assert index.lookup(150) == (100, 0)
    for i, offset in enumerate([105, 110, 120]):
        index.append(offset, i * 1000)
    with pytest.raises(ValueError):
        index.append(120, 5000)
    assert index.lookup(104) == (100, 0)
    assert index.lookup(110) == (110, 1000)
    assert index.lookup(119) == (110, 1000)
    assert index.lookup(10**9) == (120, 2000)
    index.append(130, 3000)
    assert index.is_full
    index.append(140, 4000)  # ignored when full
    assert index.entries == 4
    index.truncate_to(120)
    assert index.last_entry == (110, 1000)
    index.close()
    assert path.stat().st_size == 16
    reloaded = OffsetIndex.open(path, 100, 1024)
    assert reloaded.lookup(200) == (110, 1000)
    reloaded.close()
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(CorruptIndexError):
        OffsetIndex.open(path, 100, 1024)
    path.write_bytes(bytes.fromhex("00000005000003e800000001000007d0"))
    with pytest.raises(CorruptIndexError):
        OffsetIndex.open(path, 100, 1024)


def test_time_index(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000000.timeindex"
    index = TimeIndex.open(path, 0, 1024)
    index.maybe_append(1000, 5)
    index.maybe_append(1000, 9)  # not larger: skipped
    index.maybe_append(2000, 12)
    assert index.entries == 2
    assert index.lookup(999) == (-1, 0)
    assert index.lookup(1500) == (1000, 5)
    index.truncate_to(12)
    assert index.last_entry == (1000, 5)
    index.close()
    reloaded = TimeIndex.open(path, 0, 1024)
    assert reloaded.entries == 1
    reloaded.close()


def test_segment_append_read_translate(tmp_path: Path) -> None:
    segment = LogSegment(tmp_path, 0, index_interval_bytes=1, segment_index_bytes=1024, now_ms=NOW)
    from strom.protocol.records import parse_header, stamp_batch

    position = 0
    for i in range(5):
        buf = bytearray(make_batch(3, NOW + i))
        stamp_batch(buf, 0, i * 3, 0)
        segment.append(buf, [parse_header(buf)])
        position += len(buf)
    assert segment.size == position and segment.read_next_offset() == 15
    assert segment.offset_index.entries == 4
    found = segment.translate_offset(7)
    assert found is not None and found[1].base_offset == 6
    assert segment.translate_offset(15) is None
    file_slice = segment.read(4, 10_000, max_offset=9, min_one_message=False)
    assert file_slice is not None and file_slice.length == 2 * (position // 5)
    assert segment.max_timestamp_so_far == NOW + 6 and segment.offset_of_max_timestamp_so_far == 14
    assert segment.truncate_to(5) == 4 * (position // 5)
    assert segment.read_next_offset() == 3 and segment.max_timestamp_so_far == NOW + 2
    segment.close()


def test_leader_epoch_cache(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    cache = LeaderEpochCache(path)
    assert cache.latest_epoch == -1 and cache.end_offset_for(0, 10) == (-1, -1)
    cache.assign(1, 0)
    cache.assign(1, 5)  # same epoch, later offset: no-op
    cache.assign(3, 10)
    cache.assign(5, 20)
    assert path.read_text() == "0\n3\n1 0\n3 10\n5 20\n"
    assert cache.end_offset_for(5, 30) == (5, 30)
    assert cache.end_offset_for(3, 30) == (3, 20)
    assert cache.end_offset_for(4, 30) == (3, 20)
    assert cache.end_offset_for(0, 30) == (0, 0)
    assert cache.end_offset_for(9, 30) == (-1, -1)
    assert cache.epoch_for_offset(15) == 3
    cache.assign(4, 15)  # a lower epoch than the latest truncates the newer entries
    assert cache.entries == [(1, 0), (3, 10), (4, 15)]
    cache.truncate_from_start(12)
    assert cache.entries == [(3, 12), (4, 15)]
    cache.truncate_from_end(15)
    assert cache.entries == [(3, 12)]
    assert LeaderEpochCache.load(path).entries == [(3, 12)]
    path.write_text("garbage")
    assert LeaderEpochCache.load(path).entries == []


def test_checkpoint_files(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    write_lines(path, [("a", 1, 2)])
    assert read_lines(path, 3) == [["a", "1", "2"]]
    assert read_lines(tmp_path / "missing", 3) == []
    path.write_text("0\n2\na 1 2\n")
    with pytest.raises(CorruptCheckpointError):
        read_lines(path, 3)


def test_log_config_from_topic_config() -> None:
    config = LogConfig.from_topic_config(
        {
            "segment.bytes": "1000",
            "retention.ms": "-1",
            "message.timestamp.type": "LogAppendTime",
            "cleanup.policy": "compact,delete",
            "compression.type": "zstd",
        }
    )
    assert config.segment_bytes == 1000 and config.retention_ms == -1
    assert config.log_append_time and config.delete_enabled
    assert LogConfig().max_message_bytes == 1048588
    empty = LogConfig.from_topic_config({"cleanup.policy": ""})  # Kafka's ValidList allows []
    assert (empty.cleanup_policy, empty.delete_enabled, empty.compact_enabled) == ("", False, False)
    bad_policies = ({"cleanup.policy": "nope"}, {"cleanup.policy": "delete,nope"})
    for bad in ({"segment.bytes": "x"}, {"segment.bytes": "1"}, *bad_policies):
        with pytest.raises(KafkaError) as info:
            LogConfig.from_topic_config(bad)
        assert info.value.code == ErrorCode.INVALID_CONFIG
