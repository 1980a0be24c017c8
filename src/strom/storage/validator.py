"""The checks of Kafka's LogValidator that read records: timestamps and keys.

Everything else about a produced batch is checked from its 61-byte header (see
strom.protocol.records.validate_batches). These two read records only when
the topic asks for it, streaming them with keys and values skipped (see
strom.protocol.record_stream), so a batch that decompresses to any size is
checked in bounded memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from strom.protocol.errors import ErrorCode, RecordValidationError
from strom.protocol.record_stream import stream_records
from strom.protocol.records import BatchHeader
from strom.storage.config import LONG_MAX, LogConfig

NO_TIMESTAMP = -1

Records = bytes | bytearray | memoryview


def check_timestamps(
    config: LogConfig, records: Records, headers: Sequence[BatchHeader], now_ms: int
) -> None:
    """On a CreateTime topic: INVALID_TIMESTAMP for each record stamped more than
    message.timestamp.before.max.ms before now or more than
    message.timestamp.after.max.ms after it, each falling back to
    message.timestamp.difference.max.ms while at its default (Kafka 3.6+, KIP-937).

    The headers settle most batches: the max timestamp bounds every record from
    above, and a lone record's timestamp is the max. A batch of several records
    under a "before" limit (or failing the header check) is streamed to find the
    records out of range, which are all reported, with their index in the batch.
    """
    before = config.timestamp_before_max_ms
    after = config.timestamp_after_max_ms
    if config.log_append_time or (before >= LONG_MAX and after >= LONG_MAX):
        return
    earliest, latest = now_ms - before, now_ms + after
    view = memoryview(records)
    position = 0
    for h in headers:
        batch = view[position : position + h.size_in_bytes]
        position += h.size_in_bytes
        if h.max_timestamp <= latest and (
            before >= LONG_MAX or (h.records_count == 1 and h.max_timestamp >= earliest)
        ):
            continue
        bad = [
            (
                r.batch_index,
                f"Timestamp {r.timestamp} of message with offset {r.offset} is out of range. "
                f"The timestamp should be within [{earliest}, {latest}]",
            )
            for r in stream_records(batch, verify_crc=False)
            if r.timestamp != NO_TIMESTAMP and not earliest <= r.timestamp <= latest
        ]
        if bad:
            raise RecordValidationError(ErrorCode.INVALID_TIMESTAMP, bad)


def require_keys(records: Records, headers: Sequence[BatchHeader], partition: str) -> None:
    """On a compacted topic every record needs a key (INVALID_RECORD otherwise), as
    Kafka's skipKeyValueIterator checks it."""
    view = memoryview(records)
    position = 0
    message = f"Compacted topic cannot accept message without key in topic partition {partition}."
    for h in headers:
        batch = view[position : position + h.size_in_bytes]
        keyless = [
            (r.batch_index, message)
            for r in stream_records(batch, verify_crc=False)
            if r.key_size < 0
        ]
        if keyless:
            raise RecordValidationError(ErrorCode.INVALID_RECORD, keyless)
        position += h.size_in_bytes
